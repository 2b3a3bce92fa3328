"""The canary ground truth of unlabeled rows, kept in a file of its own that only reports read.

Where a benchmark knows the class of an unlabeled image, prepare writes it to
``data/prepared/truth.parquet`` (``item_id, true_label``), never into the manifest,
so no table a training stage loads (the manifest, the round tables) can carry it:
the firewall between truth and training is the file layout, not a convention.
Readers are the reports (inspection, HTML report, the refine stage's rules report
and the summary table) and the benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from selftrain.atomic import write_parquet
from selftrain.errors import DataError

# Ground truth of unlabeled rows: read by reports and benchmarks only.
TRUTH_COLUMN = "true_label"
TRUTH_FILE = "truth.parquet"
TRUTH_COLUMNS = ("item_id", TRUTH_COLUMN)


def split_truth(manifest: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the manifest without its truth column, the truth table of the rows that have truth)."""
    if TRUTH_COLUMN not in manifest.columns:
        return manifest, pd.DataFrame({"item_id": pd.Series([], dtype=object), TRUTH_COLUMN: pd.array([], dtype="Int64")})
    known = manifest[TRUTH_COLUMN].notna().to_numpy(dtype=bool)
    truth = pd.DataFrame(
        {
            "item_id": manifest["item_id"].to_numpy()[known],
            TRUTH_COLUMN: pd.array(manifest[TRUTH_COLUMN][known].to_numpy(), dtype="Int64"),
        }
    )
    return manifest.drop(columns=[TRUTH_COLUMN]), truth


def write_truth(truth: pd.DataFrame, path: str | Path) -> None:
    """Write the truth table (`TRUTH_COLUMNS`) atomically."""
    write_parquet(truth[list(TRUTH_COLUMNS)], Path(path))


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
    return truth[list(TRUTH_COLUMNS)].drop_duplicates("item_id")


def with_truth(table: pd.DataFrame, truth: pd.DataFrame | None) -> pd.DataFrame:
    """`table` with a `TRUTH_COLUMN` joined by item_id (null where unknown), for reports.

    A table that already has the column (a round written before truth had its own
    file) is returned as it is; so is any table when `truth` is None.
    """
    if truth is None or TRUTH_COLUMN in table.columns:
        return table
    joined = table.merge(truth, on="item_id", how="left")
    joined[TRUTH_COLUMN] = joined[TRUTH_COLUMN].astype("Int64")
    return joined
