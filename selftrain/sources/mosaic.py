"""The digits-mosaic source: deterministic 2x2 mosaics of scikit-learn's digits, for the multi-label task.

A mosaic is a 16x16 image of four 8x8 cells, in row-major order (top-left, top-right,
bottom-left, bottom-right); a cell shows one digits image or is blank (all zero). Its
labels are the set of digits it shows, as class names in class order ("0".."9"), so a
digit shown twice counts once and an all-blank mosaic has the empty label set.

Splits keep pixels apart. The digits images are first split into labeled, unlabeled,
val and test *pools* by `selftrain.data.assign_splits` (stratified by digit, the digits
source's fractions and rule that every digit has a labeled image), and a split's
mosaics draw their cells from their own pool only: no val or test mosaic shows an
image any training mosaic shows, and no labeled mosaic shows an image of the unlabeled
pool, as with separate photographs. The `count` mosaics are shared among the splits in
proportion to their pools' sizes (largest remainder).

Within a split exactly round(blank_share x cells) cells are blank, at seeded places;
the other cells walk a seeded permutation of the pool, reshuffled at each pass, so every
image of the pool is shown once before any is shown twice.

`build_mosaics` builds them in memory; `prepare_mosaics` writes them as the prepared
directory of ``data.source: digits-mosaic`` (PNGs, manifest, truth file), with the
digits source's writer (`selftrain.data.write_image_dataset`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from selftrain.config import DataConfig
from selftrain.data import SPLITS, Dataset, assign_splits, digits_images, write_image_dataset
from selftrain.errors import ConfigError, DataError
from selftrain.label_columns import LABELS_COLUMN, TRUE_LABELS_COLUMN, join_labels
from selftrain.truth import TRUTH_COLUMN

# Side of one digits image, and cells per side of a mosaic.
CELL_SIZE = 8
GRID = 2
CELLS = GRID * GRID
MOSAIC_SIZE = CELL_SIZE * GRID
# cell_sources' value for a blank cell.
BLANK = -1


@dataclass(frozen=True)
class MosaicOptions:
    """`data.mosaic`: how many mosaics, the share of blank cells, and the seed of both."""

    count: int = 2000
    blank_share: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ConfigError(f"data.mosaic.count: expected a positive integer, got {self.count!r}")
        share = self.blank_share
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
            raise ConfigError(f"data.mosaic.blank_share: expected a number in [0, 1], got {share!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"data.mosaic.seed: expected a non-negative integer, got {self.seed!r}")

    @classmethod
    def of(cls, config: DataConfig) -> MosaicOptions:
        """The options `data.mosaic` gives."""
        return cls(count=config.mosaic.count, blank_share=config.mosaic.blank_share, seed=config.mosaic.seed)


@dataclass(frozen=True)
class Mosaics:
    """Built mosaics; row i of `images` and `cell_sources` is row i of `items`."""

    # (N, 16, 16) uint8, the digits' 0..255 scale (`selftrain.data.digits_images`).
    images: np.ndarray
    # (N, 4) int64: the digits image (index into `digits_images()`) in each cell, BLANK if none.
    cell_sources: np.ndarray
    # item_id, split, LABELS_COLUMN, TRUE_LABELS_COLUMN (lists of class names, or None).
    items: pd.DataFrame
    class_names: tuple[str, ...]


def build_mosaics(options: MosaicOptions, config: DataConfig) -> Mosaics:
    """The mosaics of `options`, split by `config`'s test/val/labeled fractions.

    `config.subset` does not apply: `options.count` sets the size.

    Raises:
        DataError: a split gets no mosaic, or the labeled mosaics leave a digit unshown.
    """
    digits, digit_labels, class_names = digits_images()
    # The digits images each split's cells may show, in SPLITS order.
    pool_of = assign_splits(digit_labels, config, options.seed)
    pools = [np.flatnonzero(pool_of == split) for split in SPLITS]
    counts = _share(options.count, np.array([len(pool) for pool in pools]))
    empty = [split for split, n in zip(SPLITS, counts) if n == 0]
    if empty:
        raise DataError(
            f"data.mosaic.count={options.count} leaves split(s) {empty} without a mosaic; raise the count"
        )
    # One generator per split: a split's mosaics depend on its own pool and count only.
    sources = [
        _draw_cells(pool, int(n), options.blank_share, np.random.default_rng([options.seed, i]))
        for i, (pool, n) in enumerate(zip(pools, counts))
    ]
    cell_sources = np.concatenate(sources)  # (N, 4)
    splits = np.repeat(np.array(SPLITS, dtype=object), counts)
    label_sets = [_label_set(row, digit_labels, class_names) for row in cell_sources]
    _check_labeled_shows_every_class(label_sets, splits, class_names, options)
    unlabeled = splits == "unlabeled"
    items = pd.DataFrame(
        {
            "item_id": [f"mosaic-{i:05d}" for i in range(len(cell_sources))],
            "split": splits.astype(str),
            LABELS_COLUMN: pd.Series([None if u else s for s, u in zip(label_sets, unlabeled)], dtype=object),
            TRUE_LABELS_COLUMN: pd.Series([s if u else None for s, u in zip(label_sets, unlabeled)], dtype=object),
        }
    )
    return Mosaics(
        images=render_mosaics(cell_sources, digits),
        cell_sources=cell_sources,
        items=items,
        class_names=class_names,
    )


def prepare_mosaics(out_dir: str | Path, config: DataConfig) -> Dataset:
    """Write the mosaics of `data.mosaic` as a prepared directory under `out_dir`.

    The manifest holds `labels` as joined text (null for unlabeled rows) and a `label`
    column that is null on every row; the truth file holds `true_labels` of the unlabeled
    rows. An "auto" `data.image_size` is the mosaics' own side, 16.
    """
    mosaics = build_mosaics(MosaicOptions.of(config), config)
    items = mosaics.items
    rows = pd.DataFrame(
        {
            "item_id": items["item_id"],
            "split": items["split"],
            "label": pd.array([pd.NA] * len(items), dtype="Int64"),
            LABELS_COLUMN: _joined(items[LABELS_COLUMN]),
            TRUTH_COLUMN: pd.array([pd.NA] * len(items), dtype="Int64"),
            TRUE_LABELS_COLUMN: _joined(items[TRUE_LABELS_COLUMN]),
        }
    )
    return write_image_dataset(
        out_dir,
        mosaics.images,
        rows,
        list(mosaics.class_names),
        config.image_size,
        auto_size=MOSAIC_SIZE,
        auto_chosen_by="auto (digits-mosaic)",
    )


def _joined(cells: pd.Series) -> pd.Series:
    """Lists of class names as "a|b" text ([] -> ""), None kept: the manifest's form."""
    return pd.Series([None if names is None else join_labels(names) for names in cells], dtype=object)


def render_mosaics(cell_sources: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """(N, 16, 16) uint8 images from cell_sources (N, 4) and the digits images (D, 8, 8)."""
    images = np.zeros((len(cell_sources), MOSAIC_SIZE, MOSAIC_SIZE), dtype=np.uint8)
    for cell in range(CELLS):
        row, col = divmod(cell, GRID)
        shown = cell_sources[:, cell] != BLANK
        block = (slice(row * CELL_SIZE, (row + 1) * CELL_SIZE), slice(col * CELL_SIZE, (col + 1) * CELL_SIZE))
        images[(shown, *block)] = digits[cell_sources[shown, cell]]
    return images


def _share(total: int, sizes: np.ndarray) -> np.ndarray:
    """`total` split in proportion to `sizes` by largest remainder; ties go to the earlier split."""
    quotas = total * sizes / sizes.sum()
    counts = np.floor(quotas).astype(np.int64)
    order = sorted(range(len(sizes)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - int(counts.sum())]:
        counts[i] += 1
    return counts


def _draw_cells(pool: np.ndarray, count: int, blank_share: float, rng: np.random.Generator) -> np.ndarray:
    """(count, 4) digits indices from `pool`, BLANK in round(blank_share x 4 x count) places."""
    cells = count * CELLS
    blank = np.zeros(cells, dtype=bool)
    blank[rng.permutation(cells)[: int(round(blank_share * cells))]] = True
    shown = int((~blank).sum())
    passes = -(-shown // len(pool))  # ceil: whole reshuffled passes over the pool
    walk = np.concatenate([rng.permutation(pool) for _ in range(passes)])[:shown] if shown else pool[:0]
    sources = np.full(cells, BLANK, dtype=np.int64)
    sources[~blank] = walk
    return sources.reshape(count, CELLS)


def _label_set(cells: np.ndarray, digit_labels: np.ndarray, class_names: tuple[str, ...]) -> list[str]:
    """Class names of the digits shown in one mosaic's cells (4,), each once, in class order."""
    shown = np.unique(digit_labels[cells[cells != BLANK]])
    return [class_names[int(c)] for c in shown]


def _check_labeled_shows_every_class(
    label_sets: list[list[str]], splits: np.ndarray, class_names: tuple[str, ...], options: MosaicOptions
) -> None:
    # A digit no labeled mosaic shows has no positive to learn from (as assign_splits
    # requires one labeled item per class for the digits source).
    seen = {name for labels, split in zip(label_sets, splits) if split == "labeled" for name in labels}
    missing = [name for name in class_names if name not in seen]
    if missing:
        raise DataError(
            f"data.mosaic: no labeled mosaic shows digit(s) {missing} (count={options.count}, "
            f"blank_share={options.blank_share}); raise data.mosaic.count or data.labeled_fraction"
        )
