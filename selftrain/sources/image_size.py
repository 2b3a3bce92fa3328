"""Choose the image side for a bring-your-own-data source: `data.image_size`, or "auto".

"auto" takes the median side of the labeled images (every width and height, so 30x20
images give 25), rounds it to the nearest multiple of 8 (halves round up: 20 -> 24,
25 -> 24, 28 -> 32), keeps it at least 8 and caps it at `data.max_image_size`. Only
image headers are read here (PIL does not decode the pixels to report a size).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from selftrain.config import DataConfig
from selftrain.errors import DataError

# The chosen side is a multiple of this (the network downsamples by 2 three times).
SIZE_STEP = 8


def image_sides(files: list[str]) -> np.ndarray:
    """(2N,) every width and every height of `files`, from their headers."""
    sides = []
    for file in files:
        try:
            with Image.open(file) as image:
                sides.extend(image.size)
        except OSError as exc:  # checked readable already; a file replaced since is named here
            raise DataError(f"{file}: cannot read the image size: {exc}") from None
    return np.asarray(sides, dtype=np.float64)


def auto_image_size(median_side: float, max_image_size: int) -> int:
    """`median_side` to the nearest multiple of SIZE_STEP (halves up), in [SIZE_STEP, max_image_size]."""
    rounded = SIZE_STEP * math.floor(median_side / SIZE_STEP + 0.5)
    return int(min(max(rounded, SIZE_STEP), max_image_size))


def choose_image_size(config: DataConfig, labeled_files: list[str]) -> dict:
    """The record prepare writes (`selftrain.data.write_image_size`'s fields)."""
    if config.image_size != "auto":
        return {"image_size": config.image_size, "chosen_by": "data.image_size"}
    sides = image_sides(labeled_files)
    median = float(np.median(sides))
    return {
        "image_size": auto_image_size(median, config.max_image_size),
        "chosen_by": "auto",
        "median_side": median,
        "labeled_images": len(labeled_files),
        "max_image_size": config.max_image_size,
    }
