"""Append a filled-in review queue to the corrections file; every row is checked before anything is written.

A queue row is filled in when its ``correct_label`` is not empty: a class name, or
``drop`` to exclude the item. Its ``item_id`` must name an item of the pool (the
manifest's unlabeled split), its label must be a class, and it may appear once in the
queue and not already in the corrections file. Every bad row gets one line in a single
error (file, line, value), and then nothing is written.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from selftrain.atomic import write_text
from selftrain.errors import DataError
from selftrain.refine.corrections import CORRECTIONS_COLUMNS, parse_label, read_csv_text, read_corrections


def apply_queue(
    queue_path: str | Path, corrections_path: str | Path, manifest: pd.DataFrame, class_names: tuple[str, ...]
) -> int:
    """Append the queue's filled-in rows to `corrections_path` (created with its header if absent).

    Args:
        manifest: the prepared manifest (item_id, split): which ids are pool items.

    Returns:
        How many rows were appended.

    Raises:
        DataError: one line per bad row; the corrections file is left as it was.
    """
    queue_path, corrections_path = Path(queue_path), Path(corrections_path)
    if not queue_path.exists():
        raise DataError(f"{queue_path}: queue file not found")
    queue = read_csv_text(queue_path)
    missing = [c for c in ("item_id", "correct_label") if c not in queue.columns]
    if missing:
        raise DataError(f"{queue_path}: missing column(s) {missing}; a review queue has item_id and correct_label")
    # The file we append to must itself be sound; its lines name the rows a queue row repeats.
    existing = read_corrections(corrections_path, class_names).lines
    splits = dict(zip(manifest["item_id"].astype(str), manifest["split"].astype(str)))
    notes = queue["note"] if "note" in queue.columns else pd.Series([""] * len(queue))

    errors: list[str] = []
    new_rows: list[tuple[str, str, str]] = []
    first_line: dict[str, int] = {}
    for i, (item_id, label, note) in enumerate(zip(queue["item_id"], queue["correct_label"], notes)):
        item_id, label = item_id.strip(), label.strip()
        if not label:
            continue  # not reviewed
        where = f"{queue_path}: line {i + 2}"
        problem = _row_problem(item_id, label, splits, class_names, first_line, existing, corrections_path)
        if problem:
            errors.append(f"{where}: {problem}")
            continue
        first_line[item_id] = i + 2
        new_rows.append((item_id, label, note.strip()))
    if errors:
        raise DataError(f"{len(errors)} bad row(s) in {queue_path}; nothing written:\n" + "\n".join(errors))
    if new_rows:
        _append(corrections_path, new_rows)
    return len(new_rows)


def _row_problem(
    item_id: str,
    label: str,
    splits: dict[str, str],
    class_names: tuple[str, ...],
    first_line: dict[str, int],
    existing: dict[str, int],
    corrections_path: Path,
) -> str | None:
    if not item_id:
        return "empty item_id"
    if item_id not in splits:
        return f"item_id {item_id!r} is not in the manifest"
    if splits[item_id] != "unlabeled":
        return f"item_id {item_id!r} is in the {splits[item_id]!r} split, not the unlabeled pool"
    try:
        parse_label(label, class_names)
    except ValueError as exc:
        return f"correct_label: {exc}"
    if item_id in first_line:
        return f"item_id {item_id!r} repeats line {first_line[item_id]}"
    if item_id in existing:
        return f"item_id {item_id!r} is already corrected in {corrections_path}: line {existing[item_id]}"
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
