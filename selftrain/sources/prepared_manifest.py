"""From the rows a source reader found to the prepared manifest: images, splits, labels.

Shared by the folders and manifest readers: check every image (a bad labeled one is an
error, a bad unlabeled one is skipped), split val and test off the labeled rows, map
class names to indices (or, for multilabel rows, label sets to text; `label_set_rows`),
keep ground truth of unlabeled rows apart, and digest the bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from selftrain.config import DataConfig
from selftrain.data import TRUTH_COLUMN
from selftrain.errors import DataError
from selftrain.sources.image_size import choose_image_size
from selftrain.sources.images import check_images
from selftrain.sources.label_set_rows import (
    LabelSet,
    check_label_sets,
    classes_without_labeled_row,
    label_set_columns,
    label_set_strata,
)
from selftrain.sources.locations import lexical, relative_path
from selftrain.sources.splits import split_off

# At most this many bad labeled images are listed in one error.
MAX_LISTED = 20


@dataclass(frozen=True)
class SourceResult:
    """What a source found: the prepared manifest (paths relative to the output
    directory), the class names in index order, and what it left out."""

    manifest: pd.DataFrame
    class_names: tuple[str, ...]
    # Unreadable unlabeled images: {"path": manifest-relative path, "reason": ...}.
    skipped: list[dict] = field(default_factory=list)
    # Files that are not PNG/JPEG by name (READMEs, .txt, .dvc files), manifest-relative.
    ignored: list[str] = field(default_factory=list)
    # md5 over every referenced file's path and bytes (see the module docstring).
    content_md5: str = ""
    # The image side chosen for this data and how (`sources.image_size.choose_image_size`).
    image_size: dict = field(default_factory=dict)


@dataclass
class FoundRows:
    """Rows a source reader found, before images are checked and splits assigned.

    `split` is "" for labeled rows that have no split yet; `label` is the class name
    (None: unlabeled); for rows in the unlabeled split a label is ground truth.
    `where` names each row in error messages (a file, or a manifest line).
    Multilabel rows give `label_sets` instead (class names, [] for the empty set, None:
    unlabeled) and `labels` all None.
    """

    files: list[str]
    item_ids: list[str]
    splits: list[str]
    labels: list[str | None]
    where: list[str]
    metadata: pd.DataFrame
    label_sets: list[LabelSet] | None = None


class Origin(Protocol):
    """How a reader names where its rows came from in split errors."""

    def no_rows(self, split: str) -> str: ...

    def split_hint(self, split: str) -> str: ...


def build_manifest(
    rows: FoundRows,
    class_names: tuple[str, ...],
    config: DataConfig,
    seed: int,
    out_dir: str | Path,
    origin: Origin,
    ignored: list[str],
) -> SourceResult:
    """Check `rows`' labels and images, assign splits, and build the prepared manifest.

    `ignored` lists files the reader passed over (not PNG/JPEG by name); `origin` names
    the source in errors about an empty split.
    """
    out = lexical(out_dir)
    index_of = {name: i for i, name in enumerate(class_names)}
    for i, label in enumerate(rows.labels):
        if label is not None and label not in index_of:
            raise DataError(f"{rows.where[i]}: label {label!r} is not in the class list {list(class_names)}")
    if rows.label_sets is not None:
        check_label_sets(rows.label_sets, rows.where, class_names)

    # JPEGs are decoded at the smallest scale covering the largest side "auto" may choose.
    decode_size = config.max_image_size if config.image_size == "auto" else config.image_size
    checks = check_images(rows.files, decode_size)
    bad = [(i, reason) for i, (reason, _) in enumerate(checks) if reason is not None]
    bad_labeled = [(i, reason) for i, reason in bad if rows.splits[i] != "unlabeled"]
    if bad_labeled:
        listed = "\n".join(f"  {_where_file(rows, i)}: {reason}" for i, reason in bad_labeled[:MAX_LISTED])
        more = f"\n  ... and {len(bad_labeled) - MAX_LISTED} more" if len(bad_labeled) > MAX_LISTED else ""
        first = _where_file(rows, bad_labeled[0][0])
        raise DataError(
            f"{first}: {bad_labeled[0][1]} ({len(bad_labeled)} unreadable image(s) in the "
            f"labeled/val/test sets; these must all be fixed):\n{listed}{more}"
        )
    keep = np.ones(len(rows.files), dtype=bool)
    skipped = []
    for i, reason in bad:
        keep[i] = False
        skipped.append({"path": relative_path(rows.files[i], out), "reason": reason})

    splits = np.asarray(rows.splits, dtype=object)[keep]
    label_sets = None if rows.label_sets is None else [s for s, k in zip(rows.label_sets, keep) if k]
    if label_sets is None:
        labels = np.asarray([index_of[l] if l is not None else -1 for l in rows.labels], dtype=np.int64)[keep]
    else:  # the strata split_off stratifies by, standing in for class indices
        labels = label_set_strata(label_sets, splits, class_names)
    is_unlabeled = splits == "unlabeled"
    split_off(splits, labels, config, seed)
    for split in ("unlabeled", "test", "val"):
        if not (splits == split).any():
            hint = "" if split == "unlabeled" else f"; {origin.split_hint(split)}"
            raise DataError(f"{origin.no_rows(split)}{hint}")
    if label_sets is None:
        labeled_counts = np.bincount(labels[splits == "labeled"], minlength=len(class_names))
        unlearned = [class_names[c] for c, count in enumerate(labeled_counts) if count == 0]
    else:
        unlearned = classes_without_labeled_row(label_sets, splits, class_names)
    if unlearned:
        raise DataError(
            f"{origin.no_rows('labeled')} of class {unlearned[0]!r}; every class needs "
            "at least one labeled image for the teacher to learn it"
        )

    files = [f for f, k in zip(rows.files, keep) if k]
    image_size = choose_image_size(config, [f for f, split in zip(files, splits) if split == "labeled"])
    paths = [relative_path(f, out) for f in files]
    if label_sets is None:
        label_column = pd.array(np.where(is_unlabeled, -1, labels), dtype="Int64")
        label_column[is_unlabeled] = pd.NA
        truth = pd.array(np.where(is_unlabeled, labels, -1), dtype="Int64")
        truth[~is_unlabeled | (labels < 0)] = pd.NA
        label_columns = {"label": label_column, TRUTH_COLUMN: truth}
    else:
        label_columns = label_set_columns(label_sets, splits, class_names)
    manifest = pd.DataFrame(
        {
            "item_id": [item for item, k in zip(rows.item_ids, keep) if k],
            "path": paths,
            "split": splits.astype(str),
            **label_columns,
        }
    )
    metadata = rows.metadata[keep].reset_index(drop=True)
    manifest = pd.concat([manifest, metadata], axis=1)
    digest = hashlib.md5()
    for path, (_, md5) in zip(paths, (c for c, k in zip(checks, keep) if k)):
        digest.update(f"{path}\t{md5}\n".encode())
    return SourceResult(
        manifest=manifest,
        class_names=tuple(class_names),
        skipped=skipped,
        ignored=[relative_path(f, out) for f in ignored],
        content_md5=digest.hexdigest(),
        image_size=image_size,
    )


def _where_file(rows: FoundRows, i: int) -> str:
    return rows.where[i] if rows.where[i] == rows.files[i] else f"{rows.where[i]} ({rows.files[i]})"
