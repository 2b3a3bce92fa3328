"""Prediction flips between consecutive rounds (selftrain.inspection.flips), on synthetic artifacts (see report_fixtures)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from report_fixtures import Options, build_project, tiny_second_round, tiny  # noqa: F401 (pytest fixtures)
from selftrain.inspection.tables import round_summary


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
    # The truth file covers every round: of the 6 known, a, b, c, e, f are right (d is not).
    canary = summary["canary_overall"]
    assert canary["scope"].tolist() == ["teacher"]
    assert canary[["with_truth", "correct"]].iloc[0].tolist() == [6, 5]


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
