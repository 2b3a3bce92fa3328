"""Manifests, the embedded digits dataset, and the split that feeds every stage.

The manifest (`data/prepared/manifest.parquet`) has one row per image:
`item_id, path, split, label` plus any metadata columns.
- `split` is one of SPLITS.
- `label` is the class index for labeled, val and test rows, null for unlabeled.
- In the multilabel task (`Dataset.is_multilabel`) `labels` holds the label set instead,
  as class names joined by ``|`` ("" = the empty set; `selftrain.label_columns`), null
  for unlabeled rows, and `label` is null on every row.
Ground truth of *unlabeled* rows, where a benchmark knows it, is not in the
manifest: prepare writes it beside it, to the truth file that only reports and
benchmarks read (`selftrain.truth`).
`path` is relative to the manifest's own directory and stays so in every
artifact (tables hash the same in any clone); `Dataset.resolve` makes it absolute
only where images are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from selftrain.atomic import atomic_dir, write_json, write_parquet
from selftrain.config import INPUT_CHANNELS, DataConfig
from selftrain.errors import DataError
from selftrain.label_columns import LABELS_COLUMN, TRUE_LABELS_COLUMN, split_labels, target_matrix
from selftrain.normalization import Normalization, resolve_normalization
from selftrain.truth import ALL_TRUTH_COLUMNS, TRUTH_COLUMN, TRUTH_FILE, split_truth, write_truth

SPLITS = ("labeled", "unlabeled", "val", "test")
# A source's rows before prepare splits the truth off (`selftrain.truth.split_truth`);
# every other column is metadata.
CORE_COLUMNS = ("item_id", "path", "split", "label", TRUTH_COLUMN, LABELS_COLUMN, TRUE_LABELS_COLUMN)
MANIFEST_FILE = "manifest.parquet"
CLASSES_FILE = "classes.json"
# The side images are resized to, chosen once by prepare (`data.image_size`, or "auto"),
# and their channel count, read by every later stage, so no stage recomputes them.
IMAGE_SIZE_FILE = "image_size.json"
# prepare's shift check: pixel and size statistics per split (selftrain/sources/stats.py).
STATS_FILE = "stats.json"
# data.image_size "auto" for the digits source: the 8x8 digits, upsampled 2x.
DIGITS_IMAGE_SIZE = 16


@dataclass(frozen=True)
class Dataset:
    """A prepared dataset: the manifest with absolute paths, and the class names."""

    manifest: pd.DataFrame
    class_names: tuple[str, ...]
    # Directory the manifest's relative paths start from.
    root: Path
    # The recorded side images are resized to (image_size.json); None when the prepared
    # directory has no record (hand-built), see `input_size`.
    image_size: int | None = None
    # Channels of every image the pipeline yields (image_size.json; records written
    # before it was recorded held RGB images too).
    channels: int = INPUT_CHANNELS

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_multilabel(self) -> bool:
        """True when rows carry label sets (`labels`) rather than one class (`label`)."""
        return LABELS_COLUMN in self.manifest.columns

    def label_targets(self, rows: pd.DataFrame) -> np.ndarray:
        """(N, C) float32 0/1 targets of `rows`' label sets (labeled, val or test rows).

        Raises:
            DataError: the dataset is not multilabel, or a row has no label set.
        """
        where = str(self.root / MANIFEST_FILE)
        if not self.is_multilabel:
            raise DataError(f"{where}: no {LABELS_COLUMN!r} column; label sets exist in the multilabel task only")
        return target_matrix(rows[LABELS_COLUMN].tolist(), self.class_names, where)

    def rows(self, split: str) -> pd.DataFrame:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return self.manifest[self.manifest["split"] == split].reset_index(drop=True)

    def labeled(self) -> pd.DataFrame:
        """Rows a model may learn from directly."""
        return self.rows("labeled")

    def unlabeled(self) -> pd.DataFrame:
        """The pool the teacher pseudo-labels (its ground truth, if any, is in the truth file)."""
        return self.rows("unlabeled").drop(columns=["label", LABELS_COLUMN], errors="ignore")

    def resolve(self, paths: Iterable[str]) -> list[str]:
        """Absolute image paths for manifest-relative ones."""
        return [str(self.root / p) for p in paths]

    @property
    def metadata_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.manifest.columns if c not in CORE_COLUMNS)


def input_size(dataset: Dataset, config: DataConfig) -> int:
    """The side S every stage resizes images to (S x S): prepare's record, else an explicit
    `data.image_size` (a prepared directory built by hand has no record)."""
    if dataset.image_size is not None:
        return dataset.image_size
    if config.image_size != "auto":
        return config.image_size
    raise DataError(
        f"{dataset.root / IMAGE_SIZE_FILE}: not found; data.image_size is auto, and prepare records "
        "the size it chose there: run the prepare stage again"
    )


def input_normalization(dataset: Dataset, config: DataConfig) -> Normalization:
    """The per-channel mean and std every stage normalises images by (`data.mean`, `data.std`)."""
    return resolve_normalization(config, dataset.channels)


def write_image_size(out_dir: str | Path, image_size: int, **how: object) -> None:
    """Record the chosen image side (and how it was chosen) and the channel count beside the manifest."""
    record = {"image_size": int(image_size), "channels": INPUT_CHANNELS, **how}
    write_json(record, Path(out_dir) / IMAGE_SIZE_FILE)


def digits_images() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """scikit-learn's 1,797 handwritten digits as uint8 images (N, 8, 8) and labels (N,)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixel values are 0..16 ink counts; scale to the 0..255 range of an 8-bit PNG.
    images = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    class_names = tuple(str(name) for name in digits.target_names)
    return images, digits.target.astype(np.int64), class_names


def assign_splits(labels: np.ndarray, config: DataConfig, seed: int) -> np.ndarray:
    """Stratified, seeded split names for each item; test is a share of all items,
    val and labeled are shares of the non-test pool, unlabeled is the rest."""
    # Imported here: only prepare splits, and scikit-learn's import costs ~1 s per stage.
    from sklearn.model_selection import train_test_split

    n = len(labels)
    index = np.arange(n)
    splits = np.full(n, "unlabeled", dtype=object)
    pool, test = train_test_split(
        index, test_size=config.test_fraction, stratify=labels, random_state=seed
    )
    splits[test] = "test"
    n_pool = len(pool)
    n_val = int(round(config.val_fraction * n_pool))
    n_labeled = int(round(config.labeled_fraction * n_pool))
    num_classes = len(np.unique(labels))
    if n_labeled < num_classes:
        raise DataError(
            f"data.labeled_fraction={config.labeled_fraction} gives {n_labeled} labeled items "
            f"for {num_classes} classes; need at least one per class"
        )
    if n_val:
        pool, val = train_test_split(
            pool, test_size=n_val, stratify=labels[pool], random_state=seed + 1
        )
        splits[val] = "val"
    _, labeled = train_test_split(
        pool, test_size=n_labeled, stratify=labels[pool], random_state=seed + 2
    )
    splits[labeled] = "labeled"
    return splits


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of a stratified subset of `size` items (all items when size is 0 or larger)."""
    if size == 0 or size >= len(labels):
        return np.arange(len(labels))
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(
        np.arange(len(labels)), train_size=size, stratify=labels, random_state=seed
    )
    return np.sort(keep)


def prepare_digits(out_dir: str | Path, config: DataConfig, seed: int) -> Dataset:
    """Write the digits as PNGs plus the manifest, the truth file and class names under `out_dir`."""
    images, labels, class_names = digits_images()
    keep = stratified_subset(labels, config.subset, seed)
    splits = assign_splits(labels[keep], config, seed)
    return write_digits_dataset(
        out_dir, images[keep], labels[keep], keep, splits, list(class_names), config.image_size
    )


def write_digits_dataset(
    out_dir: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    index: np.ndarray,
    splits: np.ndarray,
    class_names: list[str],
    image_size: int | str,
) -> Dataset:
    """PNGs, manifest, truth file, class names and image size under `out_dir` for digits
    `images` (item ids from `index`, each image's position in the whole digits set) with
    their `labels` and `splits`; `image_size` as `data.image_size` ("auto" or a side)."""
    item_ids = [f"digits-{i:05d}" for i in index]
    is_unlabeled = splits == "unlabeled"
    rows = pd.DataFrame(
        {
            "item_id": item_ids,
            "split": splits.astype(str),
            "label": pd.array(np.where(is_unlabeled, -1, labels), dtype="Int64"),
            TRUTH_COLUMN: pd.array(np.where(is_unlabeled, labels, -1), dtype="Int64"),
        }
    )
    rows.loc[is_unlabeled, "label"] = pd.NA
    rows.loc[~is_unlabeled, TRUTH_COLUMN] = pd.NA
    return write_image_dataset(
        out_dir, images, rows, class_names, image_size, auto_size=DIGITS_IMAGE_SIZE, auto_chosen_by="auto (digits)"
    )


def write_image_dataset(
    out_dir: str | Path,
    images: np.ndarray,
    rows: pd.DataFrame,
    class_names: list[str],
    image_size: int | str,
    auto_size: int,
    auto_chosen_by: str,
) -> Dataset:
    """The prepared directory of an embedded source whose images are in memory.

    Writes `images` (N, H, W) uint8 as grey PNGs ``images/<item_id>.png``, the manifest
    (`rows`: item_id, split and the label/truth columns, in manifest order, plus the
    ``path`` added here), the truth file, class names and the image size record: an
    `image_size` of "auto" (`data.image_size`) records `auto_size`, chosen by `auto_chosen_by`.
    """
    out_dir = Path(out_dir)
    paths = [f"images/{item_id}.png" for item_id in rows["item_id"]]
    with atomic_dir(out_dir / "images") as tmp_images:
        for image, rel in zip(images, paths):
            Image.fromarray(image, mode="L").save(tmp_images / Path(rel).name)
    manifest = rows.copy()
    manifest.insert(1, "path", paths)
    manifest, truth = split_truth(manifest)
    write_json(list(class_names), out_dir / CLASSES_FILE)
    if image_size == "auto":
        write_image_size(out_dir, auto_size, chosen_by=auto_chosen_by)
    else:
        write_image_size(out_dir, image_size, chosen_by="data.image_size")
    write_truth(truth, out_dir / TRUTH_FILE)
    write_parquet(manifest, out_dir / MANIFEST_FILE)
    return load_dataset(out_dir / MANIFEST_FILE)


def load_dataset(manifest_path: str | Path) -> Dataset:
    """Read a prepared manifest and check its schema; ground truth never comes along."""
    manifest_path = Path(manifest_path)
    if not manifest_path.exists():
        raise DataError(f"{manifest_path}: manifest not found; run the prepare stage first")
    manifest = pd.read_parquet(manifest_path)
    missing = [c for c in ("item_id", "path", "split", "label") if c not in manifest.columns]
    if missing:
        raise DataError(f"{manifest_path}: missing required column(s) {missing}")
    # A manifest prepared before truth had its own file: drop it, so no stage sees it.
    manifest = manifest.drop(columns=list(ALL_TRUTH_COLUMNS), errors="ignore")
    bad_split = ~manifest["split"].isin(SPLITS)
    if bad_split.any():
        row = int(np.flatnonzero(bad_split)[0])
        raise DataError(
            f"{manifest_path}: row {row} has split {manifest['split'].iloc[row]!r}; "
            f"expected one of {list(SPLITS)}"
        )
    classes_path = manifest_path.parent / CLASSES_FILE
    try:
        class_names = tuple(json.loads(classes_path.read_text()))
    except FileNotFoundError:
        raise DataError(f"{classes_path}: class list not found beside the manifest") from None
    if LABELS_COLUMN in manifest.columns:
        _check_label_sets(manifest, class_names, manifest_path)
    return Dataset(
        manifest=manifest,
        class_names=class_names,
        root=manifest_path.parent.resolve(),
        **_recorded_input_shape(manifest_path.parent / IMAGE_SIZE_FILE),
    )


def _check_label_sets(manifest: pd.DataFrame, class_names: tuple[str, ...], manifest_path: Path) -> None:
    """A multilabel manifest: `label` null everywhere, a label set of known class names on
    every labeled/val/test row and none on unlabeled rows; the first offence is named."""
    if manifest["label"].notna().any():
        row = int(np.flatnonzero(manifest["label"].notna().to_numpy())[0])
        raise DataError(
            f"{manifest_path}: row {row} has both a `label` and a `{LABELS_COLUMN}` column value; "
            f"a multilabel manifest keeps `label` null"
        )
    cells = manifest[LABELS_COLUMN]
    misplaced = cells.isna().to_numpy() != (manifest["split"] == "unlabeled").to_numpy()
    if misplaced.any():
        row = int(np.flatnonzero(misplaced)[0])
        cell, split = cells.iloc[row], manifest["split"].iloc[row]
        state = "no label set" if split_labels(cell) is None else f"label set {cell!r}"
        raise DataError(f"{manifest_path}: row {row} (split {split!r}) has {state}; only unlabeled rows have none")
    # Distinct sets are few (at most 2^C, in practice far fewer rows): check each once.
    known = set(class_names)
    for cell in cells.dropna().unique():
        unknown = [name for name in split_labels(cell) if name not in known]
        if unknown:
            row = int(np.flatnonzero((cells == cell).to_numpy())[0])
            raise DataError(
                f"{manifest_path}: row {row} has label {unknown[0]!r}, which is not in {CLASSES_FILE} {list(class_names)}"
            )


def _recorded_input_shape(path: Path) -> dict[str, int]:
    """`Dataset` fields from prepare's record: image_size (absent: no record) and channels."""
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from None
    size = record.get("image_size") if isinstance(record, dict) else None
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DataError(f"{path}: expected {{\"image_size\": <positive integer>, ...}}, got {record!r}")
    channels = record.get("channels", INPUT_CHANNELS)
    if channels != INPUT_CHANNELS:
        raise DataError(
            f"{path}: channels is {channels!r}; the pipeline yields {INPUT_CHANNELS}-channel (RGB) images"
        )
    return {"image_size": size, "channels": channels}
