"""The review queue: each strategy's ranking on small frames, and the CSV + HTML written for a round."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from refine_fixtures import BED, DRESSER, ISLAND, LAMP, NAMES, make_table
from selftrain.errors import ConfigError, DataError
from selftrain.review.names import QUEUE_COLUMNS
from selftrain.review.queue import rank_queue
from selftrain_cli.main import main


def ids(queue: pd.DataFrame) -> list[str]:
    return queue["item_id"].tolist()


def test_uncertainty_ranks_lowest_confidence_then_smallest_margin():
    table = make_table([BED, ISLAND, DRESSER, LAMP], [0.9, 0.4, 0.6, 0.4])
    table["margin"] = [0.5, 0.2, 0.3, 0.1]
    queue = rank_queue(table, NAMES, "uncertainty", top=3)
    assert list(queue.columns) == list(QUEUE_COLUMNS)
    assert ids(queue) == ["item003", "item001", "item002"]
    assert queue["predicted_label"].tolist() == ["lamp", "island", "dresser"]
    assert queue["why"][0] == "low confidence 0.40 (margin 0.10)"
    assert (queue["correct_label"] == "").all()


def test_flips_lists_only_changed_predictions_least_confident_first():
    table = make_table([BED, ISLAND, DRESSER, LAMP], [0.9, 0.8, 0.5, 0.7])
    previous = pd.Series([BED, BED, BED], index=["item000", "item001", "item002"])  # item003: new
    queue = rank_queue(table, NAMES, "flips", top=10, previous=previous, previous_source="round 1")
    assert ids(queue) == ["item002", "item001"]
    assert queue["why"].tolist() == ["flipped bed -> dresser since round 1", "flipped bed -> island since round 1"]


def test_flips_without_a_previous_round_is_one_clear_error():
    with pytest.raises(DataError, match="no previous round"):
        rank_queue(make_table([BED]), NAMES, "flips", top=5)


def refined_frame() -> pd.DataFrame:
    table = make_table([BED, ISLAND, DRESSER, LAMP, BED], [0.6, 0.95, 0.8, 0.9, 0.99])
    table["kept"] = [True, True, False, False, True]
    table["label"] = pd.array([DRESSER, ISLAND, pd.NA, pd.NA, LAMP], dtype="Int64")
    table["rules"] = [["to-dresser"], [], ["no-lamps"], ["threshold"], ["corrections"]]
    table["dropped_by"] = [None, None, "no-lamps", "threshold", None]
    return table


def test_rule_disagreement_takes_relabels_and_rule_drops_most_confident_first():
    queue = rank_queue(refined_frame(), NAMES, "rule_disagreement", top=10)
    # item001 agrees with the teacher; item003 was only below the threshold; item004 is corrected.
    assert ids(queue) == ["item002", "item000"]
    assert queue["why"].tolist() == ["dropped by no-lamps (teacher said dresser)", "to-dresser relabelled bed -> dresser"]


def test_rule_disagreement_needs_a_refined_round():
    with pytest.raises(DataError, match="not refined"):
        rank_queue(make_table([BED]), NAMES, "rule_disagreement", top=5)


def test_ood_ranks_highest_score_first_and_errors_without_scores():
    table = make_table([BED, ISLAND, DRESSER], [0.9, 0.9, 0.9])
    with pytest.raises(DataError, match="no OOD scores"):
        rank_queue(table, NAMES, "ood", top=5)
    table["ood_score"] = [0.1, 3.0, np.nan]
    queue = rank_queue(table, NAMES, "ood", top=5)
    assert ids(queue) == ["item001", "item000"]


def test_top_and_exclusions():
    table = make_table([BED] * 5, [0.1, 0.2, 0.3, 0.4, 0.5])
    queue = rank_queue(table, NAMES, "uncertainty", top=2, exclude=frozenset({"item000"}))
    assert ids(queue) == ["item001", "item002"]
    with pytest.raises(ConfigError, match="--top"):
        rank_queue(table, NAMES, "uncertainty", top=0)


# --- the command, on a round laid out on disk ---------------------------------------


@pytest.fixture
def project(tmp_path):
    prepared = tmp_path / "data/prepared"
    (prepared / "images").mkdir(parents=True)
    (prepared / "classes.json").write_text(json.dumps(list(NAMES)))
    table = make_table([BED, ISLAND, DRESSER], [0.5, 0.3, 0.9])
    table["path"] = [f"images/{i}.png" for i in range(3)]
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(prepared / f"images/{i}.png")
    (tmp_path / "data/gen1/pseudo_labels").mkdir(parents=True)
    table.to_parquet(tmp_path / "data/gen1/pseudo_labels/part-00000.parquet")
    return tmp_path


def test_review_writes_the_queue_csv_and_a_self_contained_page(project):
    (project / "data/corrections.csv").write_text("item_id,label,note\nitem001,bed,\n")
    assert main(["--project-dir", str(project), "review", "--gen", "1", "--top", "5"]) == 0
    queue = pd.read_csv(project / "reviews/gen1/queue.csv", keep_default_na=False)
    assert queue["item_id"].tolist() == ["item000", "item002"]  # item001 is already corrected
    page = (project / "reviews/gen1/queue.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2
    assert "src=\"images/" not in page  # nothing linked: the page stands alone
    # An 8x8 image shown at 192x192, with the predicted label beside it.
    assert 'width="192" height="192"' in page and '<div class="label">bed</div>' in page


def test_review_by_ood_without_scores_fails_with_one_message(project, capsys):
    assert main(["--project-dir", str(project), "review", "--gen", "1", "--by", "ood"]) == 1
    assert "no OOD scores" in capsys.readouterr().err
    assert not (project / "reviews").exists()


def test_review_takes_exactly_one_of_gen_apply_promote(project, capsys):
    assert main(["--project-dir", str(project), "review", "--gen", "1", "--promote"]) == 1
    assert "exactly one of --gen K, --apply QUEUE_CSV, --promote" in capsys.readouterr().err
