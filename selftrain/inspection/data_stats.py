"""The shift check of prepare (data/prepared/stats.json) as one table: a row per split."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from selftrain.data import SPLITS, STATS_FILE
from selftrain.errors import DataError

TITLE = "Data per split (stats.json): pixel mean/std, shift from labeled in its stds, sides min/median/max"
COLUMNS = ("split", "count", "sampled", "mean", "std", "shift", "width", "height")


def read_stats(prepared_dir: str | Path) -> dict | None:
    """prepare's stats.json, or None when that prepare predates it."""
    path = Path(prepared_dir) / STATS_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from None


def stats_table(stats: dict | None) -> pd.DataFrame:
    """One row per split (empty, with its columns, without stats): pixel `mean` and `std`;
    `shift`, the split's pixel mean minus labeled's in labeled standard deviations (null
    for labeled); `width` and `height` as "min/median/max" (one cell each: 80 columns)."""
    rows = []
    splits = (stats or {}).get("splits") or {}
    shift = (stats or {}).get("shift") or {}
    # The file's keys are sorted by name; rows follow the pipeline's split order.
    order = {split: i for i, split in enumerate(SPLITS)}
    for split, entry in sorted(splits.items(), key=lambda item: order.get(item[0], len(SPLITS))):
        row = {
            "split": split,
            "count": entry.get("count"),
            "sampled": entry.get("sampled"),
            "mean": entry.get("pixel_mean"),
            "std": entry.get("pixel_std"),
            "shift": shift.get(split),
        }
        for side in ("width", "height"):
            spread = entry.get(side)
            row[side] = "/".join(f"{spread[k]:g}" for k in ("min", "median", "max")) if spread else None
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


__all__ = ["TITLE", "read_stats", "stats_table"]
