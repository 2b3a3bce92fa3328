"""The manifest source: one row per image from a CSV or Parquet file, with metadata columns.

``path`` and ``label`` (empty: unlabeled) are required, ``split`` and ``item_id``
optional; every other column is metadata, carried into the prepared manifest and from
there into every round's tables (for rules).

In the multilabel task (``task: multilabel``) ``labels`` takes the place of ``label``:
each image's label set as class names joined by ``|`` (``"bed|dresser"``). In Parquet a
null cell is unlabeled and ``""`` the empty set (an image showing none of the classes);
a list of names is read too. CSV has no null apart from the empty cell, so there an
empty cell is unlabeled, except on a row whose ``split`` is labeled, val or test, where
it is the empty set. A row of the unlabeled split with a set gives its ground truth.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from selftrain.config import DataConfig
from selftrain.data import CORE_COLUMNS, TRUTH_COLUMN
from selftrain.errors import DataError
from selftrain.label_columns import LABELS_COLUMN, TRUE_LABELS_COLUMN, split_labels
from selftrain.refine.inputs import DERIVED_COLUMNS, REQUIRED_COLUMNS, RESULT_COLUMNS
from selftrain.sources.folders import FOLDER_SPLITS
from selftrain.sources.locations import allowed_roots, inside_root, lexical
from selftrain.sources.prepared_manifest import FoundRows, SourceResult, build_manifest

# Manifest columns with a meaning of their own; every other column is metadata.
MANIFEST_REQUIRED = ("path", "label")
MANIFEST_OPTIONAL = ("split", "item_id")
# The multilabel task's required columns: label sets instead of one label.
MULTILABEL_REQUIRED = ("path", LABELS_COLUMN)
# Columns read as text exactly as written (with only the empty CSV cell meaning "none").
TEXT_COLUMNS = (*MANIFEST_REQUIRED, LABELS_COLUMN, *MANIFEST_OPTIONAL)
# Splits whose rows are labeled: a CSV row of one of them with an empty labels cell has the empty set.
LABELED_SPLITS = ("labeled", "val", "test")
# The round tables add these columns next to the manifest's metadata: a metadata
# column of the same name would be shadowed or overwritten there.
ROUND_COLUMNS = tuple(
    dict.fromkeys(
        c
        for c in ("teacher_gen", *REQUIRED_COLUMNS, *DERIVED_COLUMNS, *RESULT_COLUMNS)
        if c not in CORE_COLUMNS
    )
)


def read_manifest(
    manifest_file: str | Path | None, config: DataConfig, seed: int, out_dir: str | Path, task: str = "multiclass"
) -> SourceResult:
    """The manifest source: one row per image, from a CSV or Parquet file.

    `task` is `params.task`: "multilabel" reads label sets from ``labels``.
    Relative paths start at the manifest file's directory. Every path must resolve
    (symlinks and ``..`` followed) inside ``data.raw_dir`` unless
    ``data.allow_outside_root`` is set, and so must the manifest file itself: DVC
    tracks raw_dir, so only what lies in it reruns prepare when it changes.
    """
    if manifest_file is None:
        raise DataError("data.manifest: required when data.source is 'manifest'")
    file = lexical(manifest_file)
    raw = lexical(config.raw_dir)
    if not file.is_file():
        raise DataError(f"{file}: manifest not found (data.manifest)")
    roots = allowed_roots(raw)
    if not config.allow_outside_root and not inside_root(file, roots, raw):
        raise DataError(
            f"{file}: the manifest lies outside data.raw_dir {raw}, where DVC would not see it "
            "change; move it there or set data.allow_outside_root: true"
        )
    table = _read_table(file)
    is_csv = file.suffix.lower() == ".csv"

    def where(i: int) -> str:
        # CSV: the line a text editor shows (the header is line 1); Parquet: pandas' row index.
        return f"{file}: line {i + 2}" if is_csv else f"{file}: row {i}"

    columns = [str(c) for c in table.columns]
    table.columns = columns
    multilabel = task == "multilabel"
    _check_label_columns(file, columns, multilabel)
    for column in MULTILABEL_REQUIRED if multilabel else MANIFEST_REQUIRED:
        if column not in columns:
            raise DataError(f"{file}: missing required column {column!r}; columns are {columns}")
    for reserved in (TRUTH_COLUMN, TRUE_LABELS_COLUMN):
        if reserved in columns:
            raise DataError(
                f"{file}: column {reserved!r} is reserved; give ground truth of unlabeled "
                f"images as their {'label set' if multilabel else 'label'} with split 'unlabeled'"
            )
    clashes = [c for c in columns if c in ROUND_COLUMNS]
    if clashes:
        raise DataError(
            f"{file}: column {clashes[0]!r} is also a column of the round tables "
            f"({list(ROUND_COLUMNS)}); rename it"
        )
    if table.empty:
        raise DataError(f"{file}: the manifest has no rows")

    n = len(table)
    texts = {c: _texts(table[c]) if c in table.columns else [None] * n for c in (*MANIFEST_REQUIRED, *MANIFEST_OPTIONAL)}
    base = file.parent
    files, splits, labels = [], [], []
    label_sets: list[list[str] | None] = []
    for i in range(n):
        path = texts["path"][i]
        if path is None or not path.strip():
            raise DataError(f"{where(i)}: empty path")
        if "\x00" in path:
            raise DataError(f"{where(i)}: path {path!r} contains a NUL character")
        files.append(os.path.normpath(base / path))
        split = (texts["split"][i] or "").strip().lower()
        if split and split not in FOLDER_SPLITS:
            raise DataError(f"{where(i)}: split {texts['split'][i]!r}; expected one of {list(FOLDER_SPLITS)} or empty")
        if multilabel:
            label_sets.append(_label_set(table[LABELS_COLUMN].iloc[i], split, is_csv, where(i)))
            labels.append(None)
            has_label = label_sets[i] is not None
        else:
            label = texts["label"][i]
            labels.append(label.strip() if label is not None and label.strip() else None)
            has_label = labels[i] is not None
        if not has_label:
            if split in LABELED_SPLITS:
                missing = "a label set ('' for none), and labels is null" if multilabel else "a label, and the label is empty"
                raise DataError(f"{where(i)}: split {split!r} needs {missing}")
            split = "unlabeled"
        splits.append(split)

    first_row: dict[str, int] = {}
    for i, full in enumerate(files):
        if full in first_row:
            raise DataError(
                f"{where(i)}: path {texts['path'][i]!r} is the same file as {where(first_row[full])} "
                f"({full}); each image may appear once"
            )
        first_row[full] = i
    if not config.allow_outside_root:
        for i, full in enumerate(files):
            if not inside_root(Path(full), roots, raw):
                raise DataError(
                    f"{where(i)}: path {texts['path'][i]!r} resolves to {os.path.realpath(full)}, "
                    f"outside the data root {raw}; set data.allow_outside_root: true to allow it"
                )

    if "item_id" in table.columns:
        item_ids = texts["item_id"]
        first_id: dict[str, int] = {}
        for i, item_id in enumerate(item_ids):
            if item_id is None or not item_id.strip():
                raise DataError(f"{where(i)}: empty item_id")
            if item_id in first_id:
                raise DataError(f"{where(i)}: item_id {item_id!r} repeats {where(first_id[item_id])}")
            first_id[item_id] = i
    else:
        item_ids = [Path(os.path.relpath(f, raw)).as_posix() for f in files]

    if config.classes is not None:
        class_names = config.classes
    else:
        named = (name for names in label_sets for name in names or ()) if multilabel else labels
        class_names = tuple(sorted({label for label in named if label is not None}))
        if len(class_names) < 2:
            raise DataError(
                f"{file}: labels name {len(class_names)} class(es) {list(class_names)}; "
                "need at least two (or list them in data.classes)"
            )
    metadata = table.drop(columns=[c for c in TEXT_COLUMNS if c in table.columns])
    rows = FoundRows(
        files,
        list(item_ids),
        splits,
        labels,
        [where(i) for i in range(n)],
        metadata.reset_index(drop=True),
        label_sets=label_sets if multilabel else None,
    )
    return build_manifest(rows, class_names, config, seed, out_dir, ManifestOrigin(file), [])


def _check_label_columns(file: Path, columns: list[str], multilabel: bool) -> None:
    """`label` goes with task multiclass and `labels` with multilabel; a manifest written
    for the other task is one error naming the file and the column."""
    has_label, has_labels = "label" in columns, LABELS_COLUMN in columns
    if multilabel and has_label:
        what = "beside 'labels'" if has_labels else "and no 'labels' column"
        raise DataError(
            f"{file}: column 'label' {what}; with task: multilabel each image's label set goes in "
            "'labels' (class names joined by '|', '' for none, empty for unlabeled); remove or rename 'label'"
        )
    if not multilabel and has_labels:
        what = "beside 'label'" if has_label else "and no 'label' column"
        raise DataError(
            f"{file}: column 'labels' {what}; 'labels' holds label sets, read with task: multilabel; "
            "set task: multilabel, or give one class per image in 'label' (and rename 'labels')"
        )


def _label_set(cell: object, split: str, is_csv: bool, where: str) -> list[str] | None:
    """A `labels` cell as class names ([] the empty set) or None (unlabeled); see the module docstring."""
    if isinstance(cell, np.ndarray):  # a Parquet list column arrives as arrays
        cell = cell.tolist()
    if isinstance(cell, bytes):
        cell = cell.decode("utf-8", errors="replace")
    if cell is not None and not isinstance(cell, (str, list)):
        if not pd.isna(cell):
            raise DataError(f"{where}: labels {cell!r}; expected class names joined by '|', '' for none, or empty")
        cell = None
    names = split_labels(cell)
    if names is None and is_csv and split in LABELED_SPLITS:
        return []
    return names


def _read_table(file: Path) -> pd.DataFrame:
    """The manifest as a frame: metadata columns with pandas' usual types, the
    columns with a meaning (path, label, labels, split, item_id) as text exactly as written."""
    text_columns = TEXT_COLUMNS
    try:
        if file.suffix.lower() == ".csv":
            table = pd.read_csv(file, dtype={c: str for c in text_columns})
            # A label "None" or "NA" is a class name, not a missing value: read these
            # columns again with only the empty cell meaning "none".
            texts = pd.read_csv(file, usecols=lambda c: c in text_columns, dtype=str, keep_default_na=False)
            for column in texts.columns:
                table[column] = texts[column].where(texts[column] != "", None)
        else:
            table = pd.read_parquet(file)
    except (ValueError, OSError, UnicodeError, TypeError, KeyError, ImportError) as exc:
        # pandas' and pyarrow's parse errors are ValueError/OSError subclasses.
        raise DataError(f"{file}: cannot read the manifest: {type(exc).__name__}: {exc}") from None
    return table.reset_index(drop=True)


def _texts(column: pd.Series) -> list[str | None]:
    """Cells as text; missing cells as None; whole-number floats without ".0" (a
    Parquet integer column with nulls arrives as floats)."""
    out: list[str | None] = []
    for value in column.tolist():
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            out.append(None)
        elif isinstance(value, float) and value.is_integer():
            out.append(str(int(value)))
        elif isinstance(value, bytes):
            out.append(value.decode("utf-8", errors="replace"))
        else:
            out.append(str(value))
    return out


@dataclass(frozen=True)
class ManifestOrigin:
    """Names the manifest file in split errors, and says which rows to add."""

    file: Path

    def no_rows(self, split: str) -> str:
        if split == "unlabeled":
            return f"{self.file}: no readable unlabeled images (rows with an empty label or split 'unlabeled')"
        return f"{self.file}: no {split} rows"

    def split_hint(self, split: str) -> str:
        return f"give some rows split {split!r}, or add more labeled rows per class"
