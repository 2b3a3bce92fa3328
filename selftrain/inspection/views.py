"""Row-level views of a round table shared by every summary: pseudo-label, kept, truth, rules.

A row's *pseudo-label* is its final ``label`` where refinement set one, else the
teacher's ``pred``: dropped rows have a null ``label``, and the label they would
have carried is the teacher's prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from selftrain.data import TRUTH_COLUMN


def pseudo_labels_of(table: pd.DataFrame) -> pd.Series:
    """Each row's pseudo-label (Int64): refinement's `label` where set, else the teacher's `pred`."""
    pred = table["pred"].astype("Int64")
    if "label" not in table.columns:
        return pred
    return table["label"].astype("Int64").fillna(pred)


def kept_mask(table: pd.DataFrame) -> np.ndarray | None:
    """(N,) bool of kept rows, or None when the table was not refined."""
    if "kept" not in table.columns:
        return None
    return table["kept"].astype("boolean").fillna(False).to_numpy(dtype=bool)


def truth_of(table: pd.DataFrame) -> pd.Series | None:
    """Ground truth (Int64, null where unknown), or None when no row has it."""
    if TRUTH_COLUMN not in table.columns or not table[TRUTH_COLUMN].notna().any():
        return None
    return table[TRUTH_COLUMN].astype("Int64")


def rules_lists(table: pd.DataFrame) -> list[list[str]] | None:
    """Each row's `rules` as a plain list (Parquet gives arrays), or None without the column."""
    if "rules" not in table.columns:
        return None
    return [as_list(v) for v in table["rules"]]


def as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def class_counts(values: pd.Series, n: int, weights: pd.Series | None = None) -> np.ndarray:
    """(n,) rows per class index; indices outside 0..n-1 and nulls are ignored."""
    present = values.notna().to_numpy(dtype=bool)
    idx = values[present].to_numpy(dtype=np.int64)
    w = None if weights is None else weights[present].to_numpy(dtype=np.float64)
    inside = (idx >= 0) & (idx < n)
    counts = np.bincount(idx[inside], weights=None if w is None else w[inside], minlength=n)
    return np.rint(counts).astype(np.int64)


def ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else float("nan")
