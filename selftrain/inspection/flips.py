"""How the teacher's predictions moved between consecutive rounds: totals, top pairs, full matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd

from selftrain.inspection.views import ratio

FLIP_PAIRS_SHOWN = 10


def flip_tables(
    table: pd.DataFrame, previous: pd.Series | None, names: tuple[str, ...], source: str = "none"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """How predictions moved since the previous round: totals, top pairs, full matrix.

    Only items present in both rounds are compared. Returns empty tables (with
    their columns) when there is no previous round to compare with.
    """
    totals_columns = ["compared_with", "compared", "flipped", "flip_share"]
    pairs_columns = ["from", "to", "count"]
    matrix_columns = ["previous", *names]
    if previous is None:
        return (
            pd.DataFrame(columns=totals_columns),
            pd.DataFrame(columns=pairs_columns),
            pd.DataFrame(columns=matrix_columns),
        )
    current = table.drop_duplicates("item_id").set_index("item_id")["pred"]
    joined = pd.concat({"before": previous, "after": current}, axis=1, join="inner").dropna()
    before = joined["before"].to_numpy(dtype=np.int64)
    after = joined["after"].to_numpy(dtype=np.int64)
    matrix = flip_matrix(before, after, len(names))
    flipped = int(matrix.sum() - np.trace(matrix))
    share = ratio(flipped, len(joined))
    totals = pd.DataFrame([[source, len(joined), flipped, share]], columns=totals_columns)
    pairs = [
        (names[i], names[j], int(matrix[i, j]))
        for i, j in zip(*np.nonzero(matrix))
        if i != j
    ]
    pairs.sort(key=lambda p: -p[2])  # stable: ties keep class order
    top = pd.DataFrame(pairs[:FLIP_PAIRS_SHOWN], columns=pairs_columns)
    full = pd.DataFrame(matrix, columns=list(names))
    full.insert(0, "previous", list(names))
    return totals, top, full


def flip_matrix(before: np.ndarray, after: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts of items predicted `before[i]` then `after[i]`; out-of-range indices ignored."""
    inside = (before >= 0) & (before < num_classes) & (after >= 0) & (after < num_classes)
    flat = before[inside] * num_classes + after[inside]
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
