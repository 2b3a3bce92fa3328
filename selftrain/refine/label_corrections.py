"""People's corrections in a multi-label round (``data/corrections.csv``): read them, apply them first.

The file is the multiclass one (``item_id, label, note``; `selftrain.refine.corrections`);
in a multilabel run ``label`` is the image's whole corrected set, pipe-joined as in the
manifest (``bed|dresser``; an empty cell is the empty set: the image shows none of the
classes), or ``drop`` to exclude the image. As in multiclass, a corrected image is
settled: a dropped one stays dropped (``dropped_by`` "corrections"); one given a set is
hidden from every rule and built-in while they run, then comes back kept with that set,
weight 1, one copy and a hard 0/1 target. The report counts the labels each correction
added and removed under the ``corrections`` rule (with the canary, their precision).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from selftrain.errors import DataError
from selftrain.label_columns import split_labels
from selftrain.refine.corrections import DROP, RULE_NAME, read_csv_text
from selftrain.refine.label_sets import LabelRuleStats, LabelSetState


@dataclass(frozen=True)
class LabelCorrections:
    """item_id -> corrected set ((C,) bool), or None to drop; `source` names the file."""

    sets: dict[str, np.ndarray | None]
    source: str = ""


def read_label_corrections(path: str | Path | None, class_names: tuple[str, ...]) -> LabelCorrections:
    """Read and check a multilabel corrections file; a missing file (or None) is no corrections.

    Raises:
        DataError: one line per bad row (file, line, value): an unknown class, an empty or
            repeated item_id; or a missing column.
    """
    if path is None or not Path(path).exists():
        return LabelCorrections(sets={}, source=str(path or ""))
    path = Path(path)
    table = read_csv_text(path)
    missing = [c for c in ("item_id", "label") if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected columns ['item_id', 'label', 'note']")
    index = {name: i for i, name in enumerate(class_names)}
    sets: dict[str, np.ndarray | None] = {}
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
        if label.strip() == DROP:
            sets[item_id] = None
            continue
        row = np.zeros(len(class_names), dtype=bool)
        unknown = [name for name in split_labels(label) if name not in index]
        if unknown:
            errors.append(
                f"{path}: line {line}: label {unknown[0]!r} is not a class; expected class names joined "
                f"by '|' from {list(class_names)}, or {DROP!r}"
            )
            continue
        row[[index[name] for name in split_labels(label)]] = True
        sets[item_id] = row
    if errors:
        raise DataError("\n".join(errors))
    return LabelCorrections(sets=sets, source=str(path))


def apply_label_corrections(
    corrections: LabelCorrections, item_ids: pd.Series, state: LabelSetState
) -> tuple[LabelRuleStats, np.ndarray]:
    """Apply the corrections before any rule; return their stats and the (N,) bool mask of
    images given a set (hidden from the rules: `state.kept` is False for them on return)."""
    stats = LabelRuleStats(RULE_NAME, kind="corrections", enabled=bool(corrections.sets))
    ids = [str(i) for i in item_ids.tolist()]
    corrected = np.array([i in corrections.sets for i in ids], dtype=bool)
    dropping = np.array([i in corrections.sets and corrections.sets[i] is None for i in ids], dtype=bool)
    held = corrected & ~dropping
    stats.matched = int(corrected.sum())
    state.drop(dropping, stats)
    target = np.zeros_like(state.sets)
    for row in np.flatnonzero(held).tolist():
        target[row] = corrections.sets[ids[row]]
    moved = np.zeros(len(ids), dtype=bool)
    for c in range(state.sets.shape[1]):
        moved |= state.move(held & ~target[:, c], c, add=False, stats=stats)
        moved |= state.move(held & target[:, c], c, add=True, stats=stats)
    stats.sets_changed = int(moved.sum())
    state.note(corrected, stats)
    if corrections.sets:
        unused = len(corrections.sets) - stats.matched
        stats.note = f"{stats.matched} of {len(corrections.sets)} corrections in {corrections.source} " + (
            f"name images of this round ({unused} name no pool image)" if unused else "name images of this round"
        )
    state.kept[held] = False
    return stats, held


def restore_corrected(held: np.ndarray, state: LabelSetState) -> None:
    """Bring the corrected images back after every other step: kept, one copy, weight 1."""
    state.kept[held] = True
    state.copies[held] = 1
    state.weight[held] = 1.0
