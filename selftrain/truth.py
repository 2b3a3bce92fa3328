"""The canary ground truth of unlabeled rows, kept in a file of its own that only reports read.

Where a benchmark knows the class of an unlabeled image, prepare writes it to
``data/prepared/truth.parquet`` (``item_id, true_label``), never into the manifest,
so no table a training stage loads (the manifest, the round tables) can carry it:
the firewall between truth and training is the file layout, not a convention.
Readers are the reports (inspection, HTML report, the refine stage's rules report
and the summary table) and the benchmarks.

In the multilabel task the truth of an unlabeled image is a label set: the file then
also holds ``true_labels`` (class names joined by ``|``, "" for the empty set; see
`selftrain.label_columns`), and ``true_label`` is null on every row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from selftrain.atomic import write_parquet
from selftrain.errors import DataError
from selftrain.label_columns import TRUE_LABELS_COLUMN

# Ground truth of unlabeled rows: read by reports and benchmarks only.
TRUTH_COLUMN = "true_label"
TRUTH_FILE = "truth.parquet"
TRUTH_COLUMNS = ("item_id", TRUTH_COLUMN)
# Every truth column a manifest may carry before prepare splits it off, in file order.
ALL_TRUTH_COLUMNS = (TRUTH_COLUMN, TRUE_LABELS_COLUMN)


def split_truth(manifest: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the manifest without its truth columns, the truth table of the rows that have truth).

    The table has `TRUTH_COLUMNS`, plus `TRUE_LABELS_COLUMN` when the manifest has it.
    """
    present = [c for c in ALL_TRUTH_COLUMNS if c in manifest.columns]
    if not present:
        return manifest, pd.DataFrame({"item_id": pd.Series([], dtype=object), TRUTH_COLUMN: pd.array([], dtype="Int64")})
    known = manifest[present].notna().any(axis=1).to_numpy(dtype=bool)
    single = manifest[TRUTH_COLUMN][known].to_numpy() if TRUTH_COLUMN in present else [pd.NA] * int(known.sum())
    truth = pd.DataFrame(
        {
            "item_id": manifest["item_id"].to_numpy()[known],
            TRUTH_COLUMN: pd.array(single, dtype="Int64"),
        }
    )
    if TRUE_LABELS_COLUMN in present:
        truth[TRUE_LABELS_COLUMN] = pd.Series(manifest[TRUE_LABELS_COLUMN].to_numpy()[known], dtype=object)
    return manifest.drop(columns=present), truth


def write_truth(truth: pd.DataFrame, path: str | Path) -> None:
    """Write the truth table (`TRUTH_COLUMNS`, and `TRUE_LABELS_COLUMN` if it has one) atomically."""
    write_parquet(truth[_columns_of(truth)], Path(path))


def read_truth(path: str | Path) -> pd.DataFrame | None:
    """The truth table, or None when the file is absent (a project with no ground truth).

    Raises:
        DataError: the file cannot be read or lacks item_id/true_label.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        truth = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read ground truth: {exc}") from exc
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise DataError(f"{path}: missing required column(s) {missing}")
    truth[TRUTH_COLUMN] = truth[TRUTH_COLUMN].astype("Int64")
    if TRUE_LABELS_COLUMN in truth.columns:
        _check_true_labels(truth[TRUE_LABELS_COLUMN], path)
    return truth[_columns_of(truth)].drop_duplicates("item_id")


def with_truth(table: pd.DataFrame, truth: pd.DataFrame | None) -> pd.DataFrame:
    """`table` with the truth columns joined by item_id (null where unknown), for reports:
    `TRUTH_COLUMN`, and `TRUE_LABELS_COLUMN` when the truth has it.

    Columns the table already has (a round written before truth had its own file) are
    kept as they are, and a table that has them all is returned as it is; so is any
    table when `truth` is None.
    """
    if truth is None:
        return table
    missing = [c for c in _columns_of(truth)[1:] if c not in table.columns]
    if not missing:
        return table
    joined = table.merge(truth[["item_id", *missing]], on="item_id", how="left")
    if TRUTH_COLUMN in missing:
        joined[TRUTH_COLUMN] = joined[TRUTH_COLUMN].astype("Int64")
    if TRUE_LABELS_COLUMN in missing:
        # A row with no truth reads None (not NaN), as split_labels expects.
        joined[TRUE_LABELS_COLUMN] = joined[TRUE_LABELS_COLUMN].astype(object).where(
            joined[TRUE_LABELS_COLUMN].notna(), None
        )
    return joined


def _columns_of(truth: pd.DataFrame) -> list[str]:
    """The truth file's columns for `truth`: `TRUTH_COLUMNS`, plus true_labels if present."""
    return [*TRUTH_COLUMNS, *([TRUE_LABELS_COLUMN] if TRUE_LABELS_COLUMN in truth.columns else [])]


def _check_true_labels(cells: pd.Series, path: Path) -> None:
    # Label sets are stored as "a|b" text; anything else was not written by prepare.
    for row, cell in enumerate(cells.tolist()):
        if cell is not None and not isinstance(cell, str) and not pd.isna(cell):
            raise DataError(
                f"{path}: row {row} has {TRUE_LABELS_COLUMN} {cell!r}; expected class names joined by '|' or null"
            )
