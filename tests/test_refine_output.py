"""Training targets and the refined table: soft and hard targets, rows kept in place, Parquet."""

from __future__ import annotations

import numpy as np
import pandas as pd

from refine_fixtures import BED, LAMP, RESULT_COLUMNS, full_run, make_table, rich_table, run
from selftrain.refine import sharpen


def test_soft_targets_are_sharpened_with_temperature():
    table = make_table([BED, LAMP], [0.6, 0.7])
    probs = np.array(table["probs"].tolist())
    plain = np.array(run(table, soft=True, temperature=1.0).table["target"].tolist())
    np.testing.assert_allclose(plain, probs / probs.sum(axis=1, keepdims=True))
    sharp = np.array(run(table, soft=True, temperature=0.5).table["target"].tolist())
    squared = probs**2
    np.testing.assert_allclose(sharp, squared / squared.sum(axis=1, keepdims=True))
    assert (sharp.max(axis=1) > plain.max(axis=1)).all()
    flat = np.array(run(table, soft=True, temperature=4.0).table["target"].tolist())
    assert (flat.max(axis=1) < plain.max(axis=1)).all()


def test_hard_targets_are_one_hot_of_the_label():
    table = make_table([BED, LAMP], [0.6, 0.7])
    targets = run(table, soft=False).table["target"].tolist()
    assert targets == [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]


def test_sharpen_survives_zero_probabilities_and_tiny_temperatures():
    out = sharpen(np.array([[0.0, 0.3, 0.7], [0.5, 0.5, 0.0]]), 0.01)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, [[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]], atol=1e-12)


def test_output_keeps_rows_order_index_and_input_columns():
    table = rich_table().set_index(pd.Index(range(100, 130)))
    out = full_run(table).table
    assert out.index.equals(table.index)
    assert list(out.columns[: len(table.columns)]) == list(table.columns)
    assert out["item_id"].tolist() == table["item_id"].tolist()
    assert set(RESULT_COLUMNS + ["second_pred", "second_confidence"]) <= set(out.columns)


def test_refined_table_round_trips_through_parquet(tmp_path):
    table = rich_table()
    out = full_run(table, previous=rich_table(seed=3)).table
    path = tmp_path / "refined.parquet"
    out.to_parquet(path)
    back = pd.read_parquet(path)
    assert back["label"].tolist() == out["label"].tolist()
    assert back["kept"].tolist() == out["kept"].tolist()
    assert back["copies"].tolist() == out["copies"].tolist()
    assert [list(r) for r in back["rules"]] == out["rules"].tolist()
    assert [None if t is None else list(t) for t in back["target"]] == out["target"].tolist()
    assert back["dropped_by"].fillna("").tolist() == out["dropped_by"].fillna("").tolist()
