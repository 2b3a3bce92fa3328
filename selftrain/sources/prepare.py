"""The prepare stage's work: write the prepared directory for ``data.source``.

The embedded sources (digits, digits-mosaic) write their own images. For a
bring-your-own-data source (folders, manifest) this writes, atomically, the manifest,
``classes.json``, ``image_size.json`` (the side every later stage resizes to;
`sources.image_size`), ``skipped.json`` (unreadable unlabeled images, ignored files) and
``source.json`` (a digest of every referenced file's bytes). Every source removes what
another source left there.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from selftrain.atomic import write_json, write_parquet
from selftrain.config import DataConfig
from selftrain.data import (
    CLASSES_FILE,
    IMAGE_SIZE_FILE,
    MANIFEST_FILE,
    Dataset,
    load_dataset,
    prepare_digits,
    write_image_size,
)
from selftrain.errors import ConfigError, DataError
from selftrain.sources.folders import read_folders
from selftrain.sources.manifest import read_manifest
from selftrain.sources.mosaic import prepare_mosaics
from selftrain.truth import TRUTH_FILE, split_truth, write_truth

SKIPPED_FILE = "skipped.json"
SOURCE_FILE = "source.json"
IMAGES_DIR = "images"
# What prepare may leave in its output directory; a source removes the ones it does not write.
PREPARED_ENTRIES = (
    MANIFEST_FILE, TRUTH_FILE, CLASSES_FILE, IMAGE_SIZE_FILE, SKIPPED_FILE, SOURCE_FILE, IMAGES_DIR
)


@dataclass(frozen=True)
class Prepared:
    """The prepared dataset as the later stages load it, and how many unlabeled images were skipped."""

    dataset: Dataset
    skipped: int


def prepare_source(out_dir: str | Path, config: DataConfig, seed: int, task: str = "multiclass") -> Prepared:
    """Write the prepared manifest (and the embedded sources' images) for `config.source`
    under `out_dir`; `task` is `params.task` (the manifest source reads label sets in
    "multilabel"; digits-mosaic gives nothing else).

    Raises:
        ConfigError: the source cannot give the task's labels (Params refuses this too).
    """
    out_dir = Path(out_dir)
    embedded = (MANIFEST_FILE, TRUTH_FILE, CLASSES_FILE, IMAGE_SIZE_FILE, IMAGES_DIR)
    if task == "multilabel" and config.source not in ("digits-mosaic", "manifest"):
        raise ConfigError(f"task: multilabel needs data.source digits-mosaic or manifest, not {config.source!r}")
    if task != "multilabel" and config.source == "digits-mosaic":
        raise ConfigError("task: the digits-mosaic source gives label sets: set task to multilabel")
    if config.source == "digits":
        _remove_stale(out_dir, keep=embedded)
        return Prepared(prepare_digits(out_dir, config, seed), skipped=0)
    if config.source == "digits-mosaic":
        _remove_stale(out_dir, keep=embedded)
        return Prepared(prepare_mosaics(out_dir, config), skipped=0)
    if config.source == "folders":
        result = read_folders(config.raw_dir, config, seed, out_dir)
    elif config.source == "manifest":
        result = read_manifest(config.manifest, config, seed, out_dir, task=task)
    else:  # DataConfig.validate already refused it; this keeps the dispatch exhaustive.
        raise DataError(f"data.source: unknown source {config.source!r}")
    _remove_stale(out_dir, keep=(MANIFEST_FILE, TRUTH_FILE, CLASSES_FILE, IMAGE_SIZE_FILE, SKIPPED_FILE, SOURCE_FILE))
    write_json(list(result.class_names), out_dir / CLASSES_FILE)
    write_image_size(out_dir, **result.image_size)
    write_json(
        {"count": len(result.skipped), "skipped": result.skipped, "ignored": result.ignored},
        out_dir / SKIPPED_FILE,
    )
    write_json(
        {
            "source": config.source,
            "items": len(result.manifest),
            "skipped": len(result.skipped),
            "content_md5": result.content_md5,
        },
        out_dir / SOURCE_FILE,
    )
    # Ground truth of unlabeled rows goes to its own file, never into the manifest.
    manifest, truth = split_truth(result.manifest)
    write_truth(truth, out_dir / TRUTH_FILE)
    write_parquet(manifest, out_dir / MANIFEST_FILE)
    return Prepared(load_dataset(out_dir / MANIFEST_FILE), skipped=len(result.skipped))


def small_val_warning(dataset: Dataset, config: DataConfig) -> str | None:
    """One line when val holds fewer than `data.min_val_items` items, else None: every
    decision made on val (the gate, select_best, the temperature, rule precision) is then
    noisy, one item being worth more than 2 points of accuracy below 50."""
    count = len(dataset.rows("val"))
    if count >= config.min_val_items:
        return None
    return (
        f"prepare: warning: val holds {count} items, fewer than data.min_val_items ({config.min_val_items}); "
        "the gate, select_best, the temperature and rule precision are all decided on them"
    )


def _remove_stale(out_dir: Path, keep: tuple[str, ...]) -> None:
    """Remove what another source wrote in `out_dir` (DVC clears outputs itself; a
    hand run after switching sources would otherwise leave stale files)."""
    for name in PREPARED_ENTRIES:
        if name in keep:
            continue
        target = out_dir / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
