"""One item across rounds (selftrain.inspection.history), on synthetic artifacts (see report_fixtures)."""

from __future__ import annotations

import pandas as pd
import pytest

from report_fixtures import DROP_RULE, project  # noqa: F401 (pytest fixtures)
from selftrain.truth import TRUTH_COLUMN
from selftrain.inspection.history import HISTORY_COLUMNS, ItemNotFoundError, item_history


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
