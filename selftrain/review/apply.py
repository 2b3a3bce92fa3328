"""Append a filled-in review queue to the corrections file; every row is checked before anything is written.

A queue row is filled in when its ``correct_label`` is not empty: a class name, or
``drop`` to exclude the item. Its ``item_id`` must name an item of the pool (the
manifest's unlabeled split), its label must be a class, and it may appear once in the
queue and not already in the corrections file. Every bad row gets one line in a single
error (file, line, value), and then nothing is written.

In a multilabel run (the manifest has ``labels``) the queue's column is
``correct_labels``: the image's whole set as class names joined by ``|``, ``(none)``
for an image that shows none of the classes, or ``drop``. It is appended as the
multilabel corrections file spells it (`selftrain.refine.label_corrections`): the set
in class order, the empty cell for the empty set, ``drop``. A queue of the other task
(its label column is the other one) is refused as a whole.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from selftrain.atomic import write_text
from selftrain.errors import DataError
from selftrain.label_columns import LABELS_COLUMN, SEPARATOR, split_labels
from selftrain.refine.corrections import CORRECTIONS_COLUMNS, DROP, parse_label, read_csv_text, read_corrections
from selftrain.refine.label_corrections import read_label_corrections
from selftrain.review.names import NO_LABELS

CLASS_COLUMN = "correct_label"
SET_COLUMN = "correct_labels"


def apply_queue(
    queue_path: str | Path, corrections_path: str | Path, manifest: pd.DataFrame, class_names: tuple[str, ...]
) -> int:
    """Append the queue's filled-in rows to `corrections_path` (created with its header if absent).

    Args:
        manifest: the prepared manifest (item_id, split): which ids are pool items; a
            ``labels`` column makes it a multilabel run's (the queue has correct_labels).

    Returns:
        How many rows were appended.

    Raises:
        DataError: one line per bad row; the corrections file is left as it was.
    """
    queue_path, corrections_path = Path(queue_path), Path(corrections_path)
    if not queue_path.exists():
        raise DataError(f"{queue_path}: queue file not found")
    queue = read_csv_text(queue_path)
    multilabel = LABELS_COLUMN in manifest.columns
    column = SET_COLUMN if multilabel else CLASS_COLUMN
    _check_task(queue_path, queue, multilabel)
    missing = [c for c in ("item_id", column) if c not in queue.columns]
    if missing:
        raise DataError(f"{queue_path}: missing column(s) {missing}; a review queue has item_id and {column}")
    # The file we append to must itself be sound; its lines name the rows a queue row repeats.
    if multilabel:
        existing = read_label_corrections(corrections_path, class_names).lines
        to_label = label_set_cell
    else:
        existing = read_corrections(corrections_path, class_names).lines
        to_label = class_cell
    rules = _RowRules(
        splits=dict(zip(manifest["item_id"].astype(str), manifest["split"].astype(str))),
        class_names=class_names,
        existing=existing,
        corrections_path=corrections_path,
        column=column,
        to_label=to_label,
    )
    notes = queue["note"] if "note" in queue.columns else pd.Series([""] * len(queue))

    errors: list[str] = []
    new_rows: list[tuple[str, str, str]] = []
    first_line: dict[str, int] = {}
    for i, (item_id, label, note) in enumerate(zip(queue["item_id"], queue[column], notes)):
        item_id, label = item_id.strip(), label.strip()
        if not label:
            continue  # not reviewed
        where = f"{queue_path}: line {i + 2}"
        problem = rules.problem(item_id, label, first_line)
        if problem:
            errors.append(f"{where}: {problem}")
            continue
        first_line[item_id] = i + 2
        new_rows.append((item_id, to_label(label, class_names), note.strip()))
    if errors:
        raise DataError(f"{len(errors)} bad row(s) in {queue_path}; nothing written:\n" + "\n".join(errors))
    if new_rows:
        _append(corrections_path, new_rows)
    return len(new_rows)


def class_cell(text: str, class_names: tuple[str, ...]) -> str:
    """A multiclass queue's correct_label as the corrections file's label: as written, once checked."""
    parse_label(text, class_names)
    return text


def label_set_cell(text: str, class_names: tuple[str, ...]) -> str:
    """A multilabel queue's correct_labels as the corrections file's label: "a|b" in class
    order, "" for (none), or drop. Raises ValueError naming the first unknown class."""
    if text == DROP:
        return DROP
    if text == NO_LABELS:
        return ""
    names = split_labels(text)
    if not names:
        raise ValueError(
            f"label {text!r} names no class; write {NO_LABELS!r} for an image that shows none, or {DROP!r}"
        )
    unknown = [name for name in names if name not in class_names]
    if unknown:
        raise ValueError(
            f"label {unknown[0]!r} is not a class; expected class names joined by {SEPARATOR!r} "
            f"from {list(class_names)}, {NO_LABELS!r} or {DROP!r}"
        )
    return SEPARATOR.join(name for name in class_names if name in names)


def _check_task(queue_path: Path, queue: pd.DataFrame, multilabel: bool) -> None:
    """A queue written for the other task has the other label column: refuse it whole."""
    if multilabel and CLASS_COLUMN in queue.columns and SET_COLUMN not in queue.columns:
        raise DataError(
            f"{queue_path}: column {CLASS_COLUMN!r} (one class per item) is a multiclass run's queue, but this "
            f"project's task is multilabel: its queue has {SET_COLUMN!r} (label sets); write one with "
            "selftrain review --gen K"
        )
    if not multilabel and SET_COLUMN in queue.columns and CLASS_COLUMN not in queue.columns:
        raise DataError(
            f"{queue_path}: column {SET_COLUMN!r} (label sets) is a multilabel run's queue, but this "
            f"project's task is multiclass: its queue has {CLASS_COLUMN!r} (one class per item); write one with "
            "selftrain review --gen K"
        )


@dataclass(frozen=True)
class _RowRules:
    """What a filled-in queue row is checked against: the manifest's splits, the classes,
    the corrections file's lines, and the task's label column and its spelling."""

    splits: dict[str, str]
    class_names: tuple[str, ...]
    existing: dict[str, int]
    corrections_path: Path
    column: str
    to_label: Callable[[str, tuple[str, ...]], str]

    def problem(self, item_id: str, label: str, first_line: dict[str, int]) -> str | None:
        """Why the row cannot be appended (None: it can); `first_line` maps the ids of
        the queue's earlier accepted rows to their lines."""
        if not item_id:
            return "empty item_id"
        if item_id not in self.splits:
            return f"item_id {item_id!r} is not in the manifest"
        if self.splits[item_id] != "unlabeled":
            return f"item_id {item_id!r} is in the {self.splits[item_id]!r} split, not the unlabeled pool"
        try:
            self.to_label(label, self.class_names)
        except ValueError as exc:
            return f"{self.column}: {exc}"
        if item_id in first_line:
            return f"item_id {item_id!r} repeats line {first_line[item_id]}"
        if item_id in self.existing:
            return f"item_id {item_id!r} is already corrected in {self.corrections_path}: line {self.existing[item_id]}"
        return None


def _append(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """The file's text as it was, plus `rows`, renamed into place: a crash leaves the old file."""
    old = path.read_text() if path.exists() else ""
    if not old.strip():
        old = ",".join(CORRECTIONS_COLUMNS) + "\n"
    elif not old.endswith("\n"):
        old += "\n"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    write_text(old + buffer.getvalue(), path)
