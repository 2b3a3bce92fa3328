"""The per-generation summary table of a multilabel run: mAP and micro-F1 columns, and the
canary exact match of the kept pseudo-label sets."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from selftrain.paths import ProjectPaths
from selftrain.summary import MULTILABEL_SUMMARY_COLUMNS, format_table, generation_table


def write_generation(paths: ProjectPaths, gen: int, test_map: float, val_map: float) -> None:
    paths.metrics(gen).parent.mkdir(parents=True, exist_ok=True)
    paths.metrics(gen).write_text(json.dumps({
        "task": "multilabel", "map": test_map, "micro_f1": 0.5, "macro_f1": 0.4, "val_map": val_map,
        "val": {"map": val_map, "micro_f1": 0.45}, "val_size": 20,
        "width": 8, "depth": 1, "num_parameters": 100, "architecture": "resnet-s3",
    }))


def test_multilabel_table_has_map_columns_and_the_exact_match_canary(tmp_path):
    paths = ProjectPaths(tmp_path)
    write_generation(paths, 0, 0.70, 0.72)
    write_generation(paths, 1, 0.80, 0.81)
    paths.truth.parent.mkdir(parents=True)
    pd.DataFrame({
        "item_id": ["a", "b", "c", "d"],
        "true_label": pd.array([None] * 4, dtype="Int64"),
        "true_labels": ["1|2", "", "3", None],
    }).to_parquet(paths.truth)
    paths.refined(1).parent.mkdir(parents=True)
    pd.DataFrame({
        "item_id": ["a", "b", "c", "d", "e"],
        "labels": [["1", "2"], [], ["4"], ["5"], None],  # a, b right; c wrong; d unknown; e dropped
        "kept": [True, True, True, True, False],
    }).to_parquet(paths.refined(1))

    table = generation_table(paths, 1)

    assert table.columns.tolist() == list(MULTILABEL_SUMMARY_COLUMNS)
    assert table["test_map"].tolist() == [0.70, 0.80] and table["val_map"].tolist() == [0.72, 0.81]
    assert table["micro_f1"].tolist() == [0.5, 0.5]
    assert table["pseudo_kept"].tolist()[1] == 4
    assert table["pseudo_exact_match"].tolist()[1] == pytest.approx(2 / 3)
    # The multiclass columns are there for every reader of the table, null.
    assert table["test_accuracy"].isna().all() and table["val_accuracy"].isna().all()
    text = format_table(table)
    assert "test_map" in text and "0.8000" in text and "0.6667" in text
    assert "test_accuracy" not in text
