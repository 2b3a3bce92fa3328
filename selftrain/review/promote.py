"""Promote corrected pool items into the labeled set of the user's own data, for the next run.

Only corrections with a class label are promoted (a ``drop`` has nothing to teach), and
only items still in the pool of the prepared manifest. Per source:

- ``manifest``: the item's row in the manifest file (``data.manifest``) gets the class in
  its ``label`` column and ``labeled`` in its ``split`` column (added, empty for the
  other rows, when the file has none): a label on a row left in the unlabeled split
  would be ground truth, not training data. The file is rewritten atomically in its own
  format (CSV cells are rewritten as the text they were read as).
- ``folders``: the image is copied (not moved) to ``<raw_dir>/labeled/<class>/``, named
  by its path under ``unlabeled/`` with ``/`` as ``__`` (two pool images with one file
  name stay apart). Copied because ``unlabeled/`` is the user's DVC-tracked pool: a move
  would leave its ``.dvc`` record stale (and ``dvc checkout`` would put the file back),
  and the pool copy keeps its correction, so refine still gives it the person's label.
- ``digits`` and ``digits-mosaic``: an error; the built-in data has no files of the user's
  to write into.

In a multilabel run (`LabelCorrections`) an item's corrected set goes into the manifest's
``labels`` column instead: class names joined by ``|`` in class order, ``""`` for the
empty set (which the manifest reader takes as the empty set on a labeled row), or a list
of names where a Parquet manifest's ``labels`` column holds lists. Only the manifest
source can hold sets (a folder is one class).

Everything is checked before the first write; an item already promoted (the same file
or manifest row already labeled so) is counted as such and left alone.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from selftrain.atomic import atomic_path, write_csv, write_parquet
from selftrain.errors import ConfigError, DataError
from selftrain.config import DataConfig
from selftrain.label_columns import LABELS_COLUMN, SEPARATOR, split_labels
from selftrain.refine.corrections import Corrections
from selftrain.refine.label_corrections import LabelCorrections
from selftrain.sources.locations import lexical, relative_path


@dataclass
class Promoted:
    """What a promotion did: item ids written, already there, or not in the pool (left alone)."""

    written: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    not_in_pool: list[str] = field(default_factory=list)
    where: str = ""  # the manifest file, or the labeled folder written into


# Built-in sources -> where promotion needs the data instead (the user's own files).
BUILT_IN_SOURCES = {
    "digits": "data.source: folders or manifest",
    "digits-mosaic": "data.source: manifest, with a labels column",
}


def promote(
    corrections: Corrections | LabelCorrections,
    manifest: pd.DataFrame,
    class_names: tuple[str, ...],
    config: DataConfig,
    root: Path,
) -> Promoted:
    """Write the corrected labels of pool items into the labeled set of `config`'s source.

    Args:
        corrections: a multiclass run's labels, or a multilabel run's sets (`LabelCorrections`).
        manifest: the prepared manifest (item_id, split): which ids are still pool items.
        root: the project directory that `config`'s relative paths start from.

    Raises:
        ConfigError: the source is built in, the manifest source names no file, or label
            sets are to go into folders.
        DataError: an item's image or manifest row cannot be found.
    """
    if config.source in BUILT_IN_SOURCES:
        raise ConfigError(
            f"data.source: {config.source!r} is built in and has no files to promote labels into; promotion needs "
            f"your own data ({BUILT_IN_SOURCES[config.source]}). The corrections still apply in refine."
        )
    label_sets = isinstance(corrections, LabelCorrections)
    pool = set(manifest.loc[manifest["split"] == "unlabeled", "item_id"].astype(str))
    result = Promoted()
    # item_id -> a class name, or a set's class names in class order
    labels: dict[str, str | list[str]] = {}
    for item_id, label in _corrected(corrections, class_names).items():
        if label is None:
            continue
        if item_id in pool:
            labels[item_id] = label
        else:
            result.not_in_pool.append(item_id)
    raw = lexical(root / config.raw_dir)
    if config.source == "folders":
        if label_sets:
            raise ConfigError(
                "data.source: 'folders' gives each image one class (its folder) and cannot hold label sets; "
                "a multilabel run promotes into a manifest's labels column (data.source: manifest)"
            )
        _promote_folders(labels, raw, result)
    else:
        if config.manifest is None:
            raise ConfigError("data.manifest: required when data.source is 'manifest'")
        column = LABELS_COLUMN if label_sets else "label"
        _promote_manifest(labels, lexical(root / config.manifest), raw, result, column)
    return result


def _corrected(
    corrections: Corrections | LabelCorrections, class_names: tuple[str, ...]
) -> dict[str, str | list[str] | None]:
    """item_id -> the corrected class name or set (class names in class order); None for a drop."""
    if isinstance(corrections, LabelCorrections):
        return {
            item_id: None if row is None else [name for name, on in zip(class_names, row.tolist()) if on]
            for item_id, row in corrections.sets.items()
        }
    return {item_id: None if index is None else class_names[index] for item_id, index in corrections.labels.items()}


def _promote_folders(labels: dict[str, str], raw: Path, result: Promoted) -> None:
    result.where = str(raw / "labeled")
    copies = []
    for item_id, label in labels.items():
        source = raw / item_id
        if not source.is_file():
            raise DataError(f"{source}: image of corrected item {item_id!r} not found under {raw}")
        relative = Path(item_id).relative_to("unlabeled") if item_id.startswith("unlabeled/") else Path(item_id)
        target = raw / "labeled" / label / "__".join(relative.parts)
        if target.exists():
            if target.read_bytes() != source.read_bytes():
                raise DataError(f"{target}: a different file is already there; cannot promote {item_id!r}")
            result.already.append(item_id)
            continue
        copies.append((item_id, source, target))
    for item_id, source, target in copies:
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
        result.written.append(item_id)


def _promote_manifest(
    labels: dict[str, str | list[str]], file: Path, raw: Path, result: Promoted, column: str
) -> None:
    result.where = str(file)
    if not file.is_file():
        raise DataError(f"{file}: manifest not found (data.manifest)")
    is_csv = file.suffix.lower() == ".csv"
    try:
        table = pd.read_csv(file, dtype=str, keep_default_na=False) if is_csv else pd.read_parquet(file)
    except (ValueError, OSError, UnicodeError) as exc:
        raise DataError(f"{file}: cannot read the manifest: {type(exc).__name__}: {exc}") from None
    if "item_id" in table.columns:
        ids = table["item_id"].astype(str).str.strip()
    else:
        # The manifest source's ids: the image path relative to raw_dir.
        ids = pd.Series([relative_path(os.path.normpath(file.parent / str(p)), raw) for p in table["path"]])
    row_of = {item_id: i for i, item_id in enumerate(ids)}
    missing = [item_id for item_id in labels if item_id not in row_of]
    if missing:
        raise DataError(f"{file}: no row for corrected item(s) {missing[:5]}; was the manifest edited since prepare?")
    if labels and column not in table.columns:
        raise DataError(f"{file}: no {column!r} column to write the corrected labels into; has {list(table.columns)}")
    if "split" not in table.columns:
        table["split"] = "" if is_csv else None
    cells = table[column].tolist() if column in table.columns else []
    holds_lists = column == LABELS_COLUMN and any(isinstance(cell, (list, np.ndarray)) for cell in cells)
    for item_id, label in labels.items():
        i = row_of[item_id]
        if _holds(table.at[i, column], label) and str(table.at[i, "split"]) == "labeled":
            result.already.append(item_id)
            continue
        if isinstance(label, list):
            # A Parquet column of lists stays one: a text cell among lists would not write.
            table.at[i, column] = list(label) if holds_lists else SEPARATOR.join(label)
        else:
            table.at[i, column] = label
        table.at[i, "split"] = "labeled"
        result.written.append(item_id)
    if not result.written:
        return
    if is_csv:
        write_csv(table, file)
    else:
        write_parquet(table, file)


def _holds(cell: object, label: str | list[str]) -> bool:
    """Whether a manifest cell already says `label`: the same text, or the same set in any order."""
    if isinstance(label, list):
        names = split_labels(cell)
        return names is not None and set(names) == set(label)
    return str(cell) == label
