"""Inspection and report of multilabel rounds: label frequency, co-occurrence, rule hits, item history, HTML page."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from selftrain.data import CLASSES_FILE
from selftrain.inspection.history import item_history
from selftrain.inspection.label_set_tables import set_matrix, summarize_label_round
from selftrain.inspection.rounds import RoundData
from selftrain.inspection.tables import compare_rounds, round_summary
from selftrain.paths import ProjectPaths
from selftrain.report.pages import write_report
from selftrain.truth import TRUTH_COLUMN, write_truth

NAMES = ("bed", "dresser", "island", "nightstand")
# item: (teacher's set, set after the rules or None when dropped, rules, true set)
ROWS = {
    "a": (["bed", "island"], ["bed"], ["no-island-in-bedroom"], ["bed"]),
    "b": (["bed", "nightstand"], ["bed", "dresser", "nightstand"], ["dresser-missed"], ["bed", "dresser", "nightstand"]),
    "c": (["island"], ["island"], [], ["island"]),
    "d": (["bed", "island"], ["bed"], ["no-island-in-bedroom"], ["bed", "island"]),
    "e": ([], None, ["drop-empty"], ["dresser"]),
}
REPORT = {
    "generation": 1,
    "task": "multilabel",
    "rules": [
        {
            "name": "no-island-in-bedroom",
            "matched": 2,
            "sets_changed": 2,
            "dropped": 0,
            "labels_added": {},
            "labels_removed": {"island": 2},
            "precision": {"labels": {"right": 1, "judged": 2, "precision": 0.5}, "drop": {"right": 0, "judged": 0, "precision": None}},
        }
    ],
}


def _table(round_: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = list(ROWS)
    pseudo = pd.DataFrame(
        {
            "item_id": ids,
            "path": [f"images/{i}.png" for i in ids],
            "teacher_gen": round_ - 1,
            "probs": [[0.9, 0.1, 0.6, 0.2]] * len(ids),
            "pred_labels": [ROWS[i][0] for i in ids],
            "scores": [[0.9] * len(ROWS[i][0]) for i in ids],
            "min_margin": 0.1,
            "mean_binary_entropy": 0.3,
        }
    )
    refined = pseudo.copy()
    refined["labels"] = pd.Series([ROWS[i][1] for i in ids], dtype=object)
    refined["kept"] = [ROWS[i][1] is not None for i in ids]
    refined["rules"] = pd.Series([ROWS[i][2] for i in ids], dtype=object)
    refined["weight"] = refined["kept"].astype(float)
    refined["copies"] = refined["kept"].astype(int)
    return pseudo, refined


def _project(tmp_path) -> ProjectPaths:
    paths = ProjectPaths(tmp_path)
    (paths.prepared_dir / "images").mkdir(parents=True)
    (paths.prepared_dir / CLASSES_FILE).write_text(json.dumps(list(NAMES)))
    for i in ROWS:
        Image.fromarray(np.full((16, 16), 200, dtype=np.uint8), mode="L").save(paths.prepared_dir / f"images/{i}.png")
    truth = pd.DataFrame(
        {
            "item_id": list(ROWS),
            TRUTH_COLUMN: pd.array([None] * len(ROWS), dtype="Int64"),
            "true_labels": ["|".join(ROWS[i][3]) for i in ROWS],
        }
    )
    truth.to_parquet(paths.truth)
    for k in (1, 2):
        pseudo, refined = _table(k)
        paths.pseudo_labels(k).mkdir(parents=True)
        pseudo.to_parquet(paths.pseudo_label_part(k, 0))
        refined.to_parquet(paths.refined(k))
        paths.rules_report(k).write_text(json.dumps(REPORT))
    return paths


def _round(with_truth: bool = True) -> RoundData:
    _, refined = _table(1)
    if with_truth:
        refined["true_labels"] = ["|".join(ROWS[i][3]) for i in ROWS]
    return RoundData(round=1, table=refined, refined=True, rules_report=REPORT, class_names=NAMES)


def test_set_matrix_reads_lists_and_pipe_text_and_null():
    sets, known = set_matrix([["bed", "island"], "dresser|bed", "", None], NAMES)
    assert sets.tolist() == [
        [True, False, True, False],
        [True, True, False, False],
        [False, False, False, False],
        [False, False, False, False],
    ]
    assert known.tolist() == [True, True, True, False]


def test_label_counts_before_and_after_the_rules_with_canary_precision():
    counts = summarize_label_round(_round())["label_counts"].set_index("label")
    assert counts.loc["island", "teacher"] == 3  # a, c, d
    assert counts.loc["island", "after_rules"] == 1  # the rule removed it from a and d
    assert counts.loc["dresser", "after_rules"] == 1  # added to b
    # island: teacher right on c and d of a, c, d; after the rules only c is left, and right.
    assert counts.loc["island", "precision_teacher"] == pytest.approx(2 / 3)
    assert counts.loc["island", "precision_after"] == pytest.approx(1.0)
    assert counts.loc["island", "recall_after"] == pytest.approx(0.5)  # d's island was removed


def test_cooccurrence_counts_images_predicting_both_labels():
    matrix = summarize_label_round(_round())["cooccurrence"].set_index("label")
    assert matrix.loc["bed", "island"] == 2 and matrix.loc["island", "bed"] == 2
    assert matrix.loc["bed", "bed"] == 3
    assert matrix.loc["dresser", "dresser"] == 0  # the teacher never predicted it


def test_overview_counts_changed_sets_and_exact_match():
    overview = dict(summarize_label_round(_round())["label_overview"].itertuples(index=False))
    assert overview["kept"] == 4 and overview["dropped"] == 1
    assert overview["sets_changed_by_rules"] == 3  # a, b, d
    assert overview["exact_match_teacher"] == pytest.approx(2 / 5)  # c and d
    assert overview["exact_match_kept"] == pytest.approx(3 / 4)  # a, b, c of the kept four


def test_changed_sets_list_before_after_and_truth():
    changed = summarize_label_round(_round())["changed_sets"].set_index("item_id")
    assert changed.loc["b", "before"] == "bed|nightstand"
    assert changed.loc["b", "after"] == "bed|dresser|nightstand"
    assert changed.loc["e", "after"] == "(dropped)"
    assert changed.loc["d", "true"] == "bed|island"
    assert "c" not in changed.index


def test_rule_table_reads_the_multilabel_report():
    rules = summarize_label_round(_round())["label_rules"]
    assert rules["rule"].tolist() == ["no-island-in-bedroom"]
    assert rules["removed"].iloc[0] == "island: 2"
    assert rules["label_precision"].iloc[0] == 0.5


def test_without_truth_no_canary_columns():
    counts = summarize_label_round(_round(with_truth=False))["label_counts"]
    assert "precision_teacher" not in counts.columns


def test_inspect_a_multilabel_project(tmp_path):
    paths = _project(tmp_path)
    summary = round_summary(paths, 1)
    assert set(summary) == {"label_overview", "label_counts", "cooccurrence", "label_rules", "changed_sets"}
    # The truth file's true_labels reach the round table.
    overview = dict(summary["label_overview"].itertuples(index=False))
    assert overview["images_with_truth"] == 5
    compared = compare_rounds(paths, 1, 2)
    assert "teacher@1" in compared["label_counts"].columns and "teacher@2" in compared["label_counts"].columns
    history = item_history(paths, "b")
    assert history["pred_labels"].tolist() == ["bed|nightstand", "bed|nightstand"]
    assert history["labels"].tolist() == ["bed|dresser|nightstand"] * 2
    assert history["true_labels"].tolist() == ["bed|dresser|nightstand"] * 2


def test_report_of_a_multilabel_project(tmp_path):
    paths = _project(tmp_path)
    index = write_report(paths, tmp_path / "reports", [0, 1, 2])
    page = (index.parent / "round1.html").read_text()
    for section in ("label-frequency", "cooccurrence-figure", "label-rule-table", "changed-set-table", "label-set-grid"):
        assert f'id="{section}"' in page
    assert "teacher {bed, nightstand}" in page and "after {bed, dresser, nightstand}" in page
    assert page.count('class="tile') == len(ROWS)
