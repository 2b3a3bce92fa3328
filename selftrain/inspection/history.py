"""One item across every round: what the teacher said and what refinement did to it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from selftrain.errors import SelftrainError
from selftrain.inspection.rounds import available_rounds, read_table
from selftrain.inspection.views import as_list
from selftrain.label_columns import TRUE_LABELS_COLUMN, join_labels, split_labels
from selftrain.paths import ProjectPaths
from selftrain.truth import TRUTH_COLUMN, read_truth, with_truth

HISTORY_COLUMNS = ("round", "teacher_gen", "pred", "confidence", "label", "rules", "kept", "dropped_by")
# A multilabel round's columns: the teacher's set and its scores, the set after the rules.
LABEL_SET_HISTORY_COLUMNS = ("round", "teacher_gen", "pred_labels", "scores", "labels", "rules", "kept", "dropped_by")


class ItemNotFoundError(SelftrainError):
    """An item id appears in no round's table."""


def item_history(paths: ProjectPaths, item_id: str) -> pd.DataFrame:
    """One row per round in which `item_id` appears: what the teacher said and what refinement did.

    Columns: HISTORY_COLUMNS (null where a round's table lacks one) plus
    ``true_label`` when it is known.

    Raises:
        ItemNotFoundError: the item appears in no round's table.
    """
    rows = []
    truth = read_truth(paths.truth)
    for k in available_rounds(paths):
        path = paths.refined(k) if paths.refined(k).exists() else paths.pseudo_labels(k)
        found = with_truth(read_table(path, filters=[("item_id", "==", item_id)]), truth)
        if found.empty:
            continue
        row = found.iloc[0]
        rows.append(_label_set_row(k, row) if "pred_labels" in found.columns else _history_row(k, row))
    if not rows:
        rounds = ", ".join(str(r) for r in available_rounds(paths)) or "none"
        raise ItemNotFoundError(f"item {item_id!r} is in no round's table; rounds on disk: {rounds}")
    frame = pd.DataFrame(rows)
    if "pred_labels" in frame.columns:
        frame["kept"] = pd.array(frame["kept"].tolist(), dtype="boolean")
        if not frame[TRUE_LABELS_COLUMN].notna().any():
            frame = frame.drop(columns=[TRUE_LABELS_COLUMN])
        return frame
    for column in ("teacher_gen", "pred", "label", TRUTH_COLUMN):
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    frame["kept"] = pd.array(frame["kept"].tolist(), dtype="boolean")
    if not frame[TRUTH_COLUMN].notna().any():
        frame = frame.drop(columns=[TRUTH_COLUMN])
    return frame


def _history_row(k: int, row: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {"round": k}
    for column in HISTORY_COLUMNS[1:]:
        value = row.get(column, None)
        out[column] = as_list(value) if column == "rules" and value is not None else _scalar(value)
    out[TRUTH_COLUMN] = _scalar(row.get(TRUTH_COLUMN, None))
    return out


def _label_set_row(k: int, row: pd.Series) -> dict[str, Any]:
    """One multilabel round of an item: sets as "a|b" text ("" = empty, None = dropped/unknown)."""
    out: dict[str, Any] = {"round": k}
    for column in LABEL_SET_HISTORY_COLUMNS[1:]:
        value = row.get(column, None)
        if column in ("pred_labels", "labels"):
            names = split_labels(None if _is_null(value) else value)
            out[column] = None if names is None else join_labels(names)
        elif column == "scores":
            out[column] = None if _is_null(value) else ", ".join(f"{float(v):.3f}" for v in value)
        elif column == "rules":
            out[column] = as_list(value) if value is not None else []
        else:
            out[column] = _scalar(value)
    truth = row.get(TRUE_LABELS_COLUMN, None)
    names = split_labels(None if _is_null(truth) else truth)
    out[TRUE_LABELS_COLUMN] = None if names is None else join_labels(names)
    return out


def _is_null(value: Any) -> bool:
    return value is None or (np.ndim(value) == 0 and pd.isna(value))


def _scalar(value: Any) -> Any:
    """A plain Python value, None for any flavour of null."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value
