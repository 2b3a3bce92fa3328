"""The canary truth of a multi-label round: the truth file's ``true_labels`` as lists of class names.

prepare writes ``true_labels`` (pipe-joined class names, "" = no label) into
``data/prepared/truth.parquet`` for unlabeled images whose set is known. The rules
report (precision per rule) and the summary table (exact match of the kept sets) read
it here, after refinement; no rule or training stage ever does.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from selftrain.errors import DataError
from selftrain.label_columns import TRUE_LABELS_COLUMN, split_labels


def read_true_label_sets(path: str | Path | None) -> pd.DataFrame | None:
    """``item_id`` and ``true_labels`` (a list of class names, None where unknown) of the
    truth file; None when there is no file or it carries no label sets (a multiclass truth).

    Raises:
        DataError: the file cannot be read, or lacks item_id.
    """
    if path is None or not Path(path).exists():
        return None
    try:
        truth = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read ground truth: {exc}") from exc
    if TRUE_LABELS_COLUMN not in truth.columns:
        return None
    if "item_id" not in truth.columns:
        raise DataError(f"{path}: missing required column 'item_id'")
    truth = truth[["item_id", TRUE_LABELS_COLUMN]].drop_duplicates("item_id").reset_index(drop=True)
    truth[TRUE_LABELS_COLUMN] = pd.Series([split_labels(cell) for cell in truth[TRUE_LABELS_COLUMN]], dtype=object)
    return truth


def with_true_label_sets(table: pd.DataFrame, truth: pd.DataFrame | None) -> pd.DataFrame:
    """`table` with ``true_labels`` joined by item_id (None where unknown); unchanged when
    `truth` is None or the table already has the column. Keeps `table`'s row order."""
    if truth is None or TRUE_LABELS_COLUMN in table.columns:
        return table
    position = pd.Series(range(len(truth)), index=pd.Index(truth["item_id"]))
    found = table["item_id"].map(position)
    values = truth[TRUE_LABELS_COLUMN].tolist()
    joined = table.copy()
    joined[TRUE_LABELS_COLUMN] = pd.Series(
        [None if pd.isna(i) else values[int(i)] for i in found.tolist()], index=table.index, dtype=object
    )
    return joined
