"""The shift check of a prepared dataset: pixel and size statistics per split (stats.json).

A pool that drifted from the labeled images (another camera, another product line,
screenshots) shows here before any model sees it: per split, the row count, the
pixel mean and standard deviation (RGB in [0, 1], over every pixel of every channel)
and the min/median/max of the image widths and heights as stored on disk, plus each
split's mean shift from the labeled images in units of their standard deviation.
Splits larger than `MAX_IMAGES` are measured on a seeded sample of that many images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from selftrain.atomic import write_json
from selftrain.data import SPLITS, STATS_FILE, Dataset
from selftrain.errors import DataError

# Images read per split at most: enough for a mean and a size spread, bounded time.
MAX_IMAGES = 2000


def split_stats(dataset: Dataset, seed: int = 0) -> dict[str, Any]:
    """{"splits": {split: {count, sampled, pixel_mean, pixel_std, width, height}},
    "shift": {split: its pixel_mean minus labeled's, over labeled's pixel_std}}."""
    rng = np.random.default_rng(seed)
    splits = {}
    for split in SPLITS:
        rows = dataset.rows(split)
        count = len(rows)
        if count > MAX_IMAGES:
            rows = rows.iloc[np.sort(rng.choice(count, MAX_IMAGES, replace=False))]
        splits[split] = {"count": count, **_measure(dataset, rows["path"])}
    labeled = splits["labeled"]
    shift = {
        split: (entry["pixel_mean"] - labeled["pixel_mean"]) / labeled["pixel_std"]
        for split, entry in splits.items()
        if split != "labeled" and entry["sampled"] and labeled["sampled"] and labeled["pixel_std"] > 0
    }
    return {"splits": splits, "shift": shift}


def _measure(dataset: Dataset, paths) -> dict[str, Any]:
    """Pixel mean/std (running sums, one image in memory) and side spreads of `paths`."""
    total = squares = 0.0
    pixels = 0
    widths, heights = [], []
    for relative, path in zip(paths, dataset.resolve(paths)):
        try:
            with Image.open(path) as image:
                widths.append(image.width)
                heights.append(image.height)
                values = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
        except OSError as exc:
            raise DataError(f"{relative}: cannot read the image for the shift check: {exc}") from None
        total += values.sum()
        squares += np.square(values).sum()
        pixels += values.size
    if not pixels:
        return {"sampled": 0, "pixel_mean": None, "pixel_std": None, "width": None, "height": None}
    mean = total / pixels
    return {
        "sampled": len(widths),
        "pixel_mean": float(mean),
        "pixel_std": float(np.sqrt(max(squares / pixels - mean**2, 0.0))),
        "width": _spread(widths),
        "height": _spread(heights),
    }


def _spread(sides: list[int]) -> dict[str, float]:
    return {"min": int(min(sides)), "median": float(np.median(sides)), "max": int(max(sides))}


def write_stats(dataset: Dataset, out_dir: str | Path, seed: int = 0) -> Path:
    """Write `split_stats` to out_dir/stats.json (atomically); return its path."""
    path = Path(out_dir) / STATS_FILE
    write_json(split_stats(dataset, seed), path)
    return path


__all__ = ["MAX_IMAGES", "split_stats", "write_stats"]
