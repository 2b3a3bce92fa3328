"""Inference summaries and the round table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from selftrain.infer import PSEUDO_LABEL_COLUMNS, pseudo_label_table, summarize_probs


def test_summaries_of_known_distributions():
    probs = np.array([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]])
    s = summarize_probs(probs)
    assert s["pred"].tolist() == [0, 0]
    assert np.allclose(s["confidence"], [0.7, 1 / 3])
    assert np.allclose(s["margin"], [0.5, 0.0])
    assert np.isclose(s["entropy"][1], np.log(3))


def test_round_table_carries_metadata_and_truth():
    pool = pd.DataFrame(
        {"item_id": ["a", "b"], "path": ["a.png", "b.png"], "split": "unlabeled",
         "true_label": [1, 0], "group_id": ["g", "g"]}
    )
    table = pseudo_label_table(pool, np.array([[0.1, 0.9], [0.6, 0.4]]), teacher_gen=2)
    assert tuple(table.columns[: len(PSEUDO_LABEL_COLUMNS)]) == PSEUDO_LABEL_COLUMNS
    assert {"true_label", "group_id"} <= set(table.columns) and "split" not in table.columns
    assert table["pred"].tolist() == [1, 0]
    assert table["teacher_gen"].tolist() == [2, 2]
