"""Human corrections (``data/corrections.csv``): read them, and apply them first in refine.

The file is data, a DVC dependency of every ``refine@k``: one row per reviewed item,
``item_id, label, note``. ``label`` is a class name, or empty or ``drop`` to exclude the
item. A corrected row is settled by a person, so no later rule may touch it: a dropped
one stays dropped (``dropped_by`` "corrections"), a labelled one is hidden from every
other rule and built-in (threshold, balance, ...) while they run, then comes back kept
with its label, weight 1, one copy and a hard (one-hot) target. The report counts it all
as the ``corrections`` rule. Corrections naming items that are not in the round's pool
(e.g. promoted into the labeled set since) are ignored and counted in the rule's note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import pandas as pd

from selftrain.errors import DataError
from selftrain.refine.report import RuleStats
from selftrain.refine.state import RowState

CORRECTIONS_COLUMNS = ("item_id", "label", "note")
T = TypeVar("T")
DROP = "drop"
RULE_NAME = "corrections"
# Codes of a row's correction: no correction, drop; class indices are >= 0.
_NONE = -2
_DROP = -1


@dataclass(frozen=True)
class Corrections:
    """item_id -> class index, or None to drop; `source` names the file in notes."""

    labels: dict[str, int | None] = field(default_factory=dict)
    source: str = ""
    # item_id -> its line in the file (header: line 1), for messages naming it.
    lines: dict[str, int] = field(default_factory=dict, compare=False)


def parse_label(text: str, class_names: tuple[str, ...]) -> int | None:
    """A correction's class index; None for empty or ``drop``. Raises ValueError for an unknown name."""
    text = text.strip()
    if text == "" or text == DROP:
        return None
    if text not in class_names:
        raise ValueError(f"label {text!r} is not a class; expected one of {list(class_names)} or {DROP!r}")
    return class_names.index(text)


def read_csv_text(path: Path) -> pd.DataFrame:
    """A CSV with every cell as text exactly as written (empty cells: "")."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=list(CORRECTIONS_COLUMNS))
    except (ValueError, OSError, UnicodeError) as exc:
        raise DataError(f"{path}: cannot read CSV: {type(exc).__name__}: {exc}") from None


def read_correction_rows(path: Path, parse_label_cell: Callable[[str], T]) -> tuple[dict[str, T], dict[str, int]]:
    """({item_id: parsed label}, {item_id: line}) of a corrections file, for either task:
    `parse_label_cell` turns a `label` cell into the task's value and raises ValueError
    with what is wrong. Every bad row is collected into one DataError, a line per row
    (file, line, value): an empty or repeated item_id, a label the parser refuses."""
    table = read_csv_text(path)
    missing = [c for c in ("item_id", "label") if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected columns {list(CORRECTIONS_COLUMNS)}")
    labels: dict[str, T] = {}
    first_line: dict[str, int] = {}
    errors = []
    for i, (item_id, label) in enumerate(zip(table["item_id"], table["label"])):
        line = i + 2  # the header is line 1, as a text editor counts
        item_id = item_id.strip()
        if not item_id:
            errors.append(f"{path}: line {line}: empty item_id")
            continue
        if item_id in first_line:
            errors.append(f"{path}: line {line}: item_id {item_id!r} repeats line {first_line[item_id]}")
            continue
        first_line[item_id] = line
        try:
            labels[item_id] = parse_label_cell(label)
        except ValueError as exc:
            errors.append(f"{path}: line {line}: {exc}")
    if errors:
        raise DataError("\n".join(errors))
    return labels, first_line


def read_corrections(path: str | Path | None, class_names: tuple[str, ...]) -> Corrections:
    """Read and check the corrections file; a missing file (or None) is no corrections.

    Raises:
        DataError: one line per bad row (file, line, value): an unknown label, an empty or
            repeated item_id; or a missing column.
    """
    if path is None or not Path(path).exists():
        return Corrections(source=str(path or ""))
    path = Path(path)
    labels, first_line = read_correction_rows(path, lambda label: parse_label(label, class_names))
    return Corrections(labels=labels, source=str(path), lines=first_line)


@dataclass(frozen=True)
class AppliedCorrections:
    """Which rows the corrections settled: (N,) masks."""

    corrected: np.ndarray  # bool: any correction (label or drop)
    held: np.ndarray  # bool: corrected to a label; hidden from the other rules while they run

    def hide(self, state: RowState) -> None:
        """Take the labelled rows out of the live set: rules act only on kept rows."""
        state.kept[self.held] = False

    def restore(self, state: RowState) -> None:
        """Bring the labelled rows back after every other rule ran: kept, one copy, weight 1."""
        state.kept[self.held] = True
        state.copies[self.held] = 1
        state.weight[self.held] = 1.0


def apply_corrections(
    corrections: Corrections, item_ids: pd.Series, state: RowState
) -> tuple[RuleStats, AppliedCorrections]:
    """Apply the corrections to the round's rows (before any rule); account them as a rule."""
    stats = RuleStats(RULE_NAME, "corrections", enabled=bool(corrections.labels))
    codes = np.array(
        [_code(corrections.labels, str(i)) for i in item_ids.tolist()], dtype=np.int64
    ).reshape(-1)
    corrected = codes != _NONE
    held = codes >= 0
    stats.matched = int(corrected.sum())
    state.drop(codes == _DROP, stats)
    state.relabel(held, np.where(held, codes, 0), stats)
    state.note(corrected, stats)
    if corrections.labels:
        unused = len(corrections.labels) - stats.matched
        stats.note = f"{stats.matched} of {len(corrections.labels)} corrections in {corrections.source} " + (
            f"name items of this round ({unused} name no pool item)" if unused else "name items of this round"
        )
    return stats, AppliedCorrections(corrected=corrected, held=held)


def _code(labels: dict[str, int | None], item_id: str) -> int:
    if item_id not in labels:
        return _NONE
    label = labels[item_id]
    return _DROP if label is None else label
