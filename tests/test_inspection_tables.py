"""The summary tables of a round and two rounds side by side (selftrain.inspection.tables), on synthetic artifacts (see report_fixtures)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from report_fixtures import CLASS_NAMES, Options, build_project, project, tiny  # noqa: F401 (pytest fixtures)
from selftrain.truth import TRUTH_COLUMN
from selftrain.inspection.tables import SUMMARY_TABLES, compare_rounds, round_summary


def test_summary_has_every_table(tiny):
    summary = round_summary(tiny, 1)
    assert list(summary) == list(SUMMARY_TABLES)
    assert all(isinstance(frame, pd.DataFrame) for frame in summary.values())


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


def test_summary_counts_agree_with_the_tables(project):
    refined = pd.read_parquet(project.refined(3))
    summary = round_summary(project, 3)
    overview = dict(zip(summary["overview"]["item"], summary["overview"]["value"]))
    assert overview["rows"] == len(refined) and overview["kept"] == int(refined["kept"].sum())
    counts = summary["class_counts"]
    assert counts["teacher"].tolist() == np.bincount(refined["pred"], minlength=10).tolist()
    kept_labels = refined.loc[refined["kept"], "label"].astype(int)
    assert counts["kept"].tolist() == np.bincount(kept_labels, minlength=10).tolist()
    truth = refined.merge(pd.read_parquet(project.truth), on="item_id").loc[refined["kept"], TRUTH_COLUMN]
    assert truth.notna().all()
    accuracy = summary["canary_overall"].set_index("scope").loc["kept", "accuracy"]
    assert accuracy == pytest.approx((kept_labels.to_numpy() == truth.to_numpy()).mean())


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


def test_without_refined_table(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=2, items=20, refined=False))
    summary = round_summary(paths, 1)
    assert summary["class_counts"]["kept"].isna().all()
    assert summary["class_counts"]["teacher"].sum() == 20
    assert summary["canary_overall"]["scope"].tolist() == ["teacher"]
    assert summary["canary_classes"]["precision"].isna().all()
    assert summary["canary_classes"]["teacher"].sum() == 20
    assert summary["rules"].empty
