"""The review queue of a multilabel round: each strategy's ranking of label sets, and the queue's columns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from refine_fixtures import NAMES
from selftrain.errors import DataError
from selftrain.review.names import LABEL_SET_QUEUE_COLUMNS
from selftrain.review.queue import rank_queue


def label_table(pred_labels, margins, entropies=None) -> pd.DataFrame:
    """A multilabel infer table: one image per row, its predicted set and how unsure it was."""
    n = len(pred_labels)
    return pd.DataFrame(
        {
            "item_id": [f"img{i}" for i in range(n)],
            "path": [f"images/{i}.png" for i in range(n)],
            "probs": [[0.5] * len(NAMES)] * n,
            # As read back from Parquet: arrays of class names.
            "pred_labels": [np.array(names, dtype=object) for names in pred_labels],
            "min_margin": margins,
            "mean_binary_entropy": entropies if entropies is not None else [0.3] * n,
            "labels": [None] * n,  # the pool's own sets: unknown
        }
    )


def ids(queue: pd.DataFrame) -> list[str]:
    return queue["item_id"].tolist()


def test_uncertainty_ranks_smallest_min_margin_then_highest_entropy_then_table_order():
    table = label_table(
        [["bed"], ["dresser", "bed"], [], ["lamp"], ["island"]],
        margins=[0.30, 0.0004, 0.0004, 0.0004, 0.40],
        entropies=[0.1, 0.2, 0.6, 0.2, 0.1],
    )
    queue = rank_queue(table, NAMES, "uncertainty", top=4)
    assert list(queue.columns) == list(LABEL_SET_QUEUE_COLUMNS)
    # img2 has the highest entropy of the three at 0.0004; img1 and img3 tie and keep table order.
    assert ids(queue) == ["img2", "img1", "img3", "img0"]
    # Sets in class order (bed before dresser), the empty set as (none).
    assert queue["predicted_labels"].tolist() == ["(none)", "bed|dresser", "lamp", "bed"]
    assert queue["min_margin"].tolist() == [0.0004, 0.0004, 0.0004, 0.3]
    assert queue["why"][0] == "least certain class 0.0004 from its threshold (mean binary entropy 0.60)"
    assert (queue["correct_labels"] == "").all()


def test_flips_lists_images_whose_set_changed_least_margin_first():
    table = label_table([["bed", "lamp"], ["bed"], [], ["island"], ["dresser"]], margins=[0.4, 0.2, 0.1, 0.3, 0.05])
    previous = pd.Series(
        # img0: the same set in another order (no flip); img4: not seen before.
        [np.array(["lamp", "bed"]), np.array(["bed", "island"]), np.array(["lamp"]), np.array([], dtype=object)],
        index=["img0", "img1", "img2", "img3"],
    )
    queue = rank_queue(table, NAMES, "flips", top=10, previous=previous, previous_source="round 1")
    assert ids(queue) == ["img2", "img1", "img3"]
    assert queue["why"].tolist() == [
        "set changed lamp -> (none) since round 1",
        "set changed bed|island -> bed since round 1",
        "set changed (none) -> island since round 1",
    ]


def test_flips_without_a_previous_round_is_one_clear_error():
    with pytest.raises(DataError, match="no previous round"):
        rank_queue(label_table([["bed"]], [0.1]), NAMES, "flips", top=5)


def refined_label_table() -> pd.DataFrame:
    table = label_table(
        [["bed"], ["lamp"], ["bed", "lamp"], ["island"], ["dresser"], ["bed"], ["lamp"]],
        margins=[0.2, 0.3, 0.45, 0.01, 0.5, 0.9, 0.6],
    )
    table["kept"] = [True, True, False, False, True, True, False]
    table["labels"] = [["bed", "dresser"], ["lamp"], None, None, ["bed"], ["island"], None]
    table["rules"] = [
        ["add-dresser"], [], ["no-lamps"], ["margin"], ["to-bed", "balance"], ["corrections"], ["agreement"]
    ]
    table["dropped_by"] = [None, None, "no-lamps", "margin", None, None, "agreement"]
    return table


def test_rule_disagreement_takes_set_changes_and_rule_drops_most_certain_teacher_first():
    queue = rank_queue(refined_label_table(), NAMES, "rule_disagreement", top=10)
    # img1: the rules agree with the teacher; img3: only a filter dropped it; img5: a person corrected it.
    assert ids(queue) == ["img6", "img4", "img2", "img0"]
    assert queue["why"].tolist() == [
        "dropped by agreement (teacher said lamp)",
        "to-bed changed dresser -> bed",  # balance is a filter, not the rule that changed the set
        "dropped by no-lamps (teacher said bed|lamp)",
        "add-dresser changed bed -> bed|dresser",
    ]


def test_rule_disagreement_needs_a_refined_round():
    with pytest.raises(DataError, match=r"not refined \(no column\(s\) \['kept', 'rules', 'dropped_by'\]\)"):
        rank_queue(label_table([["bed"]], [0.1]), NAMES, "rule_disagreement", top=5)


def test_ood_ranks_highest_score_first_and_corrected_images_are_left_out():
    table = label_table([["bed"], ["lamp"], [], ["island"]], margins=[0.1, 0.2, 0.3, 0.4])
    table["ood_score"] = [0.5, 4.0, np.nan, 2.0]
    queue = rank_queue(table, NAMES, "ood", top=5, exclude=frozenset({"img3"}))
    assert ids(queue) == ["img1", "img0"]
    assert queue["why"].tolist() == ["out-of-distribution score 4", "out-of-distribution score 0.5"]
    assert list(queue.columns) == list(LABEL_SET_QUEUE_COLUMNS)


def test_page_shows_the_predicted_set_and_min_margin_and_names_correct_labels(tmp_path):
    from selftrain.review.page import queue_html

    queue = rank_queue(label_table([["lamp", "bed"], []], margins=[0.031, 0.2]), NAMES, "uncertainty", top=5)
    page = queue_html(queue, "Review queue, round 1", tmp_path, "reviews/gen1/queue.csv")
    assert '<div class="label">bed|lamp</div><div class="muted">min_margin 0.031</div>' in page
    assert '<div class="label">(none)</div><div class="muted">min_margin 0.2</div>' in page
    assert "confidence" not in page
    assert "Fill in <code>correct_labels</code>" in page
    assert "<code>(none)</code> for an image that shows no class; or <code>drop</code>" in page


# --- the command, on a multilabel round laid out on disk ------------------------------


def test_review_writes_a_label_set_queue_and_page_for_a_multilabel_round(tmp_path):
    from selftrain_cli.main import main

    prepared = tmp_path / "data/prepared"
    prepared.mkdir(parents=True)
    (prepared / "classes.json").write_text(json.dumps(list(NAMES)))
    table = label_table([["bed"], ["lamp", "island"], []], margins=[0.2, 0.1, 0.05])
    for generation, pred_labels in ((1, [["bed"], ["lamp"], ["dresser"]]), (2, None)):
        round_table = table.copy()
        if pred_labels is not None:
            round_table["pred_labels"] = [np.array(names, dtype=object) for names in pred_labels]
        (tmp_path / f"data/gen{generation}/pseudo_labels").mkdir(parents=True)
        round_table.to_parquet(tmp_path / f"data/gen{generation}/pseudo_labels/part-00000.parquet")
    (tmp_path / "data/corrections.csv").write_text("item_id,label,note\nimg2,,nothing there\n")

    assert main(["--project-dir", str(tmp_path), "review", "--gen", "2", "--by", "flips"]) == 0
    queue = pd.read_csv(tmp_path / "reviews/gen2/queue.csv", keep_default_na=False)
    assert list(queue.columns) == list(LABEL_SET_QUEUE_COLUMNS)
    # img0 kept its set; img2 flipped too, but a person already corrected it.
    assert queue["item_id"].tolist() == ["img1"]
    assert queue["predicted_labels"].tolist() == ["island|lamp"]
    assert queue["why"].tolist() == ["set changed lamp -> island|lamp since round 1"]
    page = (tmp_path / "reviews/gen2/queue.html").read_text()
    assert '<div class="label">island|lamp</div><div class="muted">min_margin 0.1</div>' in page
    assert "Fill in <code>correct_labels</code>" in page
