"""Per-round inspection tables, on synthetic artifacts (see report_fixtures)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from report_fixtures import (
    CLASS_NAMES,
    DROP_RULE,
    RELABEL_RULE,
    Options,
    build_project,
    tiny_round,
    tiny_second_round,
)
from selftrain.data import TRUTH_COLUMN
from selftrain.errors import SelftrainError
from selftrain.inspection import (
    HISTORY_COLUMNS,
    SUMMARY_TABLES,
    ItemNotFoundError,
    RoundNotFoundError,
    available_rounds,
    compare_rounds,
    item_history,
    render_summary,
    round_summary,
)
from selftrain.paths import ProjectPaths


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> ProjectPaths:
    return build_project(tmp_path_factory.mktemp("inspection") / "project")


@pytest.fixture()
def tiny(tmp_path) -> ProjectPaths:
    paths = ProjectPaths(tmp_path / "tiny")
    tiny_round(paths)
    return paths


def _row(frame: pd.DataFrame, column: str, value) -> pd.Series:
    rows = frame[frame[column] == value]
    assert len(rows) == 1, f"expected one row with {column} == {value!r}, got {len(rows)}"
    return rows.iloc[0]


def _close(a, b) -> bool:
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None or pd.isna(a)
    return a == pytest.approx(b)


# ---------------------------------------------------------------------------
# Finding rounds


def test_available_rounds_ignores_round_zero_and_stray_dirs(project):
    (project.root / "data" / "gen0").mkdir(exist_ok=True)  # the teacher's round: no table
    (project.root / "data" / "genx").mkdir(exist_ok=True)
    (project.root / "data" / "gen9").mkdir(exist_ok=True)  # empty: nothing written yet
    assert available_rounds(project) == [1, 2, 3]


def test_bad_round_names_the_rounds_on_disk(project):
    with pytest.raises(RoundNotFoundError) as info:
        round_summary(project, 7)
    assert isinstance(info.value, SelftrainError)
    assert str(info.value) == "no round 7; rounds on disk: 1, 2, 3"
    teacher = r"^no round 0 \(round 0 is the teacher.*rounds on disk: 1, 2, 3$"
    with pytest.raises(RoundNotFoundError, match=teacher):
        round_summary(project, 0)


def test_bad_round_in_an_empty_project(tmp_path):
    with pytest.raises(RoundNotFoundError, match=r"^no round 1; rounds on disk: none"):
        round_summary(ProjectPaths(tmp_path), 1)
    assert available_rounds(ProjectPaths(tmp_path)) == []


# ---------------------------------------------------------------------------
# The summary tables on the hand-made round (values computed by hand in tiny_round's docstring)


def test_summary_has_every_table(tiny):
    summary = round_summary(tiny, 1)
    assert list(summary) == list(SUMMARY_TABLES)
    assert all(isinstance(frame, pd.DataFrame) for frame in summary.values())


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


def test_class_counts_by_hand(tiny):
    counts = round_summary(tiny, 1)["class_counts"].set_index("class")
    assert counts.loc[["0", "1", "2"], "teacher"].tolist() == [3, 2, 2]
    assert counts.loc[["0", "1", "2"], "kept"].tolist() == [2, 2, 0]
    assert counts.loc[["0", "1", "2"], "dropped"].tolist() == [1, 1, 1]
    assert counts["teacher"].sum() == 7 and counts["kept"].sum() == 4


def test_quantiles_per_predicted_class(tiny):
    quantiles = round_summary(tiny, 1)["quantiles"]
    class0 = quantiles[(quantiles["class"] == "0") & (quantiles["metric"] == "confidence")].iloc[0]
    assert class0["count"] == 3  # a, b, g: 0.9, 0.8, 0.7
    assert class0["mean"] == pytest.approx(0.8) and class0["q50"] == pytest.approx(0.8)
    everything = quantiles[(quantiles["class"] == "(all)") & (quantiles["metric"] == "confidence")].iloc[0]
    assert everything["count"] == 7 and everything["q50"] == pytest.approx(0.7)
    assert set(quantiles["metric"]) == {"confidence"}  # the tiny table has no margin/entropy


def test_rule_hits_counted_from_table_without_report(tiny):
    rules = round_summary(tiny, 1)["rules"].set_index("rule")
    assert set(rules["source"]) == {"table"}
    assert rules.loc["two-to-one", ["changed", "dropped", "relabelled"]].tolist() == [1, 0, 1]
    assert rules.loc["threshold", ["changed", "dropped", "relabelled"]].tolist() == [2, 2, 0]
    assert rules.loc["margin", ["changed", "dropped"]].tolist() == [1, 1]


def test_flips_against_the_previous_round_by_hand(tiny):
    tiny_second_round(tiny)
    summary = round_summary(tiny, 2)
    flips = summary["flips"].iloc[0]
    # h is new in round 2: only the 7 items of both rounds are compared.
    assert [flips["compared_with"], flips["compared"], flips["flipped"]] == ["round 1", 7, 2]
    assert flips["flip_share"] == pytest.approx(2 / 7)
    pairs = summary["flip_pairs"]
    assert list(zip(pairs["from"], pairs["to"], pairs["count"])) == [("0", "1", 1), ("2", "0", 1)]
    matrix = summary["flip_matrix"].set_index("previous")
    assert matrix.loc["0", "0"] == 2 and matrix.loc["0", "1"] == 1 and matrix.loc["2", "2"] == 1
    assert int(matrix.to_numpy().sum()) == 7
    # Round 2 has no refined table: kept counts are unknown, the canary is teacher-only.
    assert summary["class_counts"]["kept"].isna().all()
    assert summary["canary_overall"].empty  # round 2 has no truth column either


def test_first_round_has_no_flips(tiny):
    summary = round_summary(tiny, 1)
    assert summary["flips"].empty and summary["flip_pairs"].empty and summary["flip_matrix"].empty
    assert list(summary["flips"].columns) == ["compared_with", "compared", "flipped", "flip_share"]


def test_flips_fall_back_to_prev_pred_column(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=2, items=20))
    refined = pd.read_parquet(paths.refined(2))
    refined["prev_pred"] = pd.array(refined["pred"].to_numpy(), dtype="Int64")
    refined.loc[0, "prev_pred"] = (int(refined.loc[0, "pred"]) + 1) % 10
    refined.to_parquet(paths.refined(2), index=False)
    shutil.rmtree(paths.round_dir(1))  # no round 1 table: prev_pred is the only source
    flips = round_summary(paths, 2)["flips"].iloc[0]
    assert [flips["compared_with"], flips["compared"], flips["flipped"]] == ["prev_pred column", 20, 1]


# ---------------------------------------------------------------------------
# Synthetic multi-round project


def test_rule_hits_come_from_the_rules_report(project):
    report = json.loads(project.rules_report(2).read_text())
    rules = round_summary(project, 2)["rules"].set_index("rule")
    assert list(rules.index) == [RELABEL_RULE, DROP_RULE]
    assert set(rules["source"]) == {"rules_report"}
    for entry in report["rules"]:
        assert rules.loc[entry["name"], "matched"] == entry["matched"]
        assert rules.loc[entry["name"], "dropped"] == entry["dropped"]
    relabelled = report["rules"][0]["relabelled"]["7->1"]
    assert rules.loc[RELABEL_RULE, "relabelled"] == relabelled
    assert rules.loc[RELABEL_RULE, "relabelled_pairs"] == f"7->1: {relabelled}"


def test_rule_report_precision_is_flattened(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=1, items=20))
    report = json.loads(paths.rules_report(1).read_text())
    report["rules"][1]["precision"] = {
        "relabel": {"right": 0, "judged": 0, "precision": None},
        "drop": {"right": 3, "judged": 4, "precision": 0.75},
        "overall": {"right": 3, "judged": 4, "precision": 0.75},
    }
    paths.rules_report(1).write_text(json.dumps(report))
    rules = round_summary(paths, 1)["rules"].set_index("rule")
    assert rules.loc[DROP_RULE, "precision"] == pytest.approx(0.75)
    assert rules.loc[DROP_RULE, "drop_precision"] == pytest.approx(0.75)
    assert math.isnan(rules.loc[DROP_RULE, "relabel_precision"])


def test_summary_counts_agree_with_the_tables(project):
    refined = pd.read_parquet(project.refined(3))
    summary = round_summary(project, 3)
    overview = dict(zip(summary["overview"]["item"], summary["overview"]["value"]))
    assert overview["rows"] == len(refined) and overview["kept"] == int(refined["kept"].sum())
    counts = summary["class_counts"]
    assert counts["teacher"].tolist() == np.bincount(refined["pred"], minlength=10).tolist()
    kept_labels = refined.loc[refined["kept"], "label"].astype(int)
    assert counts["kept"].tolist() == np.bincount(kept_labels, minlength=10).tolist()
    truth = refined.loc[refined["kept"], TRUTH_COLUMN].astype(int)
    accuracy = summary["canary_overall"].set_index("scope").loc["kept", "accuracy"]
    assert accuracy == pytest.approx((kept_labels.to_numpy() == truth.to_numpy()).mean())


def test_item_history_across_rounds(project):
    history = item_history(project, "item-007")
    assert history["round"].tolist() == [1, 2, 3]
    assert tuple(history.columns[:8]) == HISTORY_COLUMNS
    assert HISTORY_COLUMNS == (
        "round", "teacher_gen", "pred", "confidence", "label", "rules", "kept", "dropped_by"
    )
    for _, row in history.iterrows():
        table = pd.read_parquet(project.refined(row["round"])).set_index("item_id").loc["item-007"]
        assert row["pred"] == table["pred"] and row["confidence"] == pytest.approx(table["confidence"])
        assert row["kept"] == table["kept"] and row["rules"] == list(table["rules"])
        assert row["teacher_gen"] == row["round"] - 1
        assert row[TRUTH_COLUMN] == 7
        if table["kept"]:
            assert row["label"] == table["label"] and pd.isna(row["dropped_by"])
        else:
            assert pd.isna(row["label"]) and row["dropped_by"] == DROP_RULE


def test_unknown_item_is_a_clear_error(project):
    message = r"^item 'no-such-item' is in no round's table; rounds on disk: 1, 2, 3$"
    with pytest.raises(ItemNotFoundError, match=message):
        item_history(project, "no-such-item")


def test_compare_rounds_puts_the_tables_side_by_side(project):
    compared = compare_rounds(project, 1, 3)
    assert list(compared) == list(SUMMARY_TABLES)
    counts = compared["class_counts"]
    assert list(counts.columns[:3]) == ["class", "teacher@1", "teacher@3"]
    one, three = round_summary(project, 1), round_summary(project, 3)
    assert counts["kept@1"].tolist() == one["class_counts"]["kept"].tolist()
    assert counts["kept@3"].tolist() == three["class_counts"]["kept"].tolist()
    assert counts["class"].tolist() == list(CLASS_NAMES)
    # Round 1 has no flips: its side is null, round 3's is filled.
    flips = compared["flips"]
    assert pd.isna(flips["flipped@1"].iloc[0])
    assert flips["flipped@3"].iloc[0] == three["flips"]["flipped"].iloc[0]


def test_render_summary_prints_titles_and_missing_tables(tiny):
    console = Console(record=True, width=200)
    render_summary(round_summary(tiny, 1), console)
    text = console.export_text()
    assert "Canary overall" in text and "dropped" in text and "0.7500" in text
    assert "Prediction flips vs the previous round: not available" in text


# ---------------------------------------------------------------------------
# Degrading gracefully


def test_without_truth_the_canary_is_empty_but_present(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=2, items=20, truth=False))
    summary = round_summary(paths, 2)
    for name in ("canary_classes", "canary_overall", "canary_drops", "confusion"):
        assert summary[name].empty and len(summary[name].columns) > 0, name
    overview = dict(zip(summary["overview"]["item"], summary["overview"]["value"]))
    assert overview["rows_with_truth"] == 0 and "kept_accuracy" not in overview
    assert TRUTH_COLUMN not in item_history(paths, "item-001").columns


def test_truth_missing_from_refined_is_taken_from_pseudo_labels(tiny):
    refined = pd.read_parquet(tiny.refined(1)).drop(columns=[TRUTH_COLUMN])
    refined.to_parquet(tiny.refined(1), index=False)
    overall = round_summary(tiny, 1)["canary_overall"].set_index("scope")
    assert overall.loc["kept", "accuracy"] == pytest.approx(0.75)


def test_without_report_and_rule_columns(tmp_path):
    options = Options(rounds=2, items=20, rules_report=False, refined_without=("rules", "dropped_by"))
    paths = build_project(tmp_path / "p", options)
    summary = round_summary(paths, 2)
    assert summary["rules"].empty and summary["canary_drops"].empty
    assert summary["class_counts"]["kept"].sum() == int(pd.read_parquet(paths.refined(2))["kept"].sum())
    assert not summary["canary_overall"].empty
    history = item_history(paths, "item-001")
    assert history["rules"].isna().all() and history["dropped_by"].isna().all()


def test_without_refined_table(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=2, items=20, refined=False))
    summary = round_summary(paths, 1)
    assert summary["class_counts"]["kept"].isna().all()
    assert summary["class_counts"]["teacher"].sum() == 20
    assert summary["canary_overall"]["scope"].tolist() == ["teacher"]
    assert summary["canary_classes"]["precision"].isna().all()
    assert summary["canary_classes"]["teacher"].sum() == 20
    assert summary["rules"].empty
