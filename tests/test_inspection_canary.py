"""Pseudo-label quality against ground truth (selftrain.inspection.canary), on synthetic artifacts (see report_fixtures)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from report_fixtures import CLASS_NAMES, Options, build_project, tiny, tiny_round  # noqa: F401 (pytest fixtures)
from selftrain.inspection.history import item_history
from selftrain.inspection.tables import round_summary
from selftrain.paths import ProjectPaths
from selftrain.truth import TRUTH_COLUMN


def test_canary_overall_by_hand(tiny):
    overall = round_summary(tiny, 1)["canary_overall"].set_index("scope")
    # teacher: 6 rows with truth, right on a, c, f.
    assert overall.loc["teacher", ["rows", "with_truth", "correct"]].tolist() == [7, 6, 3]
    assert overall.loc["teacher", "accuracy"] == pytest.approx(0.5)
    # kept a, b, c, d: wrong only on b.
    assert overall.loc["kept", ["rows", "with_truth", "correct"]].tolist() == [4, 4, 3]
    assert overall.loc["kept", "accuracy"] == pytest.approx(0.75)
    # dropped e (teacher wrong: a right drop), f (teacher right), g (no truth).
    assert overall.loc["dropped", ["rows", "with_truth", "correct"]].tolist() == [3, 2, 1]
    assert overall.loc["dropped", "wrong_share"] == pytest.approx(0.5)


def test_canary_per_class_by_hand(tiny):
    classes = round_summary(tiny, 1)["canary_classes"].set_index("class")
    expected = {
        # class: truth, kept, kept_correct, precision, recall, teacher_precision, teacher_recall
        "0": (2, 2, 1, 0.5, 0.5, 0.5, 0.5),
        "1": (4, 2, 2, 1.0, 0.5, 1.0, 0.5),
        "2": (0, 0, 0, None, None, 0.0, None),
    }
    for name, (truth, kept, correct, precision, recall, t_precision, t_recall) in expected.items():
        row = classes.loc[name]
        assert [row["truth"], row["kept"], row["kept_correct"]] == [truth, kept, correct], name
        assert _close(row["precision"], precision) and _close(row["recall"], recall), name
        assert _close(row["teacher_precision"], t_precision), name
        assert _close(row["teacher_recall"], t_recall), name
    assert (classes.loc[list(CLASS_NAMES[3:]), "truth"] == 0).all()


def test_canary_per_dropping_rule_by_hand(tiny):
    drops = round_summary(tiny, 1)["canary_drops"]
    threshold = _row(drops, "rule", "threshold")
    assert [threshold["dropped"], threshold["with_truth"], threshold["wrong"]] == [2, 2, 1]
    assert threshold["wrong_share"] == pytest.approx(0.5)
    margin = _row(drops, "rule", "margin")
    assert [margin["dropped"], margin["with_truth"], margin["wrong"]] == [1, 0, 0]
    assert math.isnan(margin["wrong_share"])


def test_confusion_counts_kept_rows_with_truth(tiny):
    confusion = round_summary(tiny, 1)["confusion"].set_index("truth")
    assert confusion.loc["0", "0"] == 1  # a
    assert confusion.loc["1", "0"] == 1  # b
    assert confusion.loc["1", "1"] == 2  # c, d (relabelled 2 -> 1)
    assert int(confusion.to_numpy().sum()) == 4


def test_without_truth_the_canary_is_empty_but_present(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=2, items=20, truth=False))
    summary = round_summary(paths, 2)
    for name in ("canary_classes", "canary_overall", "canary_drops", "confusion"):
        assert summary[name].empty and len(summary[name].columns) > 0, name
    overview = dict(zip(summary["overview"]["item"], summary["overview"]["value"]))
    assert overview["rows_with_truth"] == 0 and "kept_accuracy" not in overview
    assert TRUTH_COLUMN not in item_history(paths, "item-001").columns


def test_truth_missing_from_refined_is_taken_from_pseudo_labels(tmp_path):
    paths = ProjectPaths(tmp_path / "old")
    tiny_round(paths, truth_file=False)  # a round written when the tables carried truth
    refined = pd.read_parquet(paths.refined(1)).drop(columns=[TRUTH_COLUMN])
    refined.to_parquet(paths.refined(1), index=False)
    overall = round_summary(paths, 1)["canary_overall"].set_index("scope")
    assert overall.loc["kept", "accuracy"] == pytest.approx(0.75)


CANARY_TABLES = ("canary_classes", "canary_overall", "canary_drops", "confusion", "overview")


def test_canary_numbers_from_the_truth_file_equal_those_from_truth_columns(tiny, tmp_path):
    for path in (tiny.pseudo_label_part(1, 0), tiny.refined(1)):
        assert TRUTH_COLUMN not in pd.read_parquet(path).columns
    old = ProjectPaths(tmp_path / "old")
    tiny_round(old, truth_file=False)
    assert not old.truth.exists()
    from_file, from_columns = round_summary(tiny, 1), round_summary(old, 1)
    for name in CANARY_TABLES:
        pd.testing.assert_frame_equal(from_file[name], from_columns[name], obj=name)
    assert not from_file["canary_overall"].empty


def test_item_history_takes_truth_from_the_truth_file(tiny):
    history = item_history(tiny, "b")
    assert history[TRUTH_COLUMN].tolist() == [1]
    assert TRUTH_COLUMN not in item_history(tiny, "g").columns  # g's truth is unknown


def _row(frame: pd.DataFrame, column: str, value) -> pd.Series:
    rows = frame[frame[column] == value]
    assert len(rows) == 1, f"expected one row with {column} == {value!r}, got {len(rows)}"
    return rows.iloc[0]


def _close(a, b) -> bool:
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None or pd.isna(a)
    return a == pytest.approx(b)
