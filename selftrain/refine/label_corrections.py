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

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from selftrain.label_columns import split_labels
from selftrain.refine.corrections import DROP, RULE_NAME, read_correction_rows
from selftrain.refine.label_sets import LabelRuleStats, LabelSetState


@dataclass(frozen=True)
class LabelCorrections:
    """item_id -> corrected set ((C,) bool), or None to drop; `source` names the file."""

    sets: dict[str, np.ndarray | None]
    source: str = ""
    # item_id -> its line in the file (header: line 1), for messages naming it.
    lines: dict[str, int] = field(default_factory=dict, compare=False)


def read_label_corrections(path: str | Path | None, class_names: tuple[str, ...]) -> LabelCorrections:
    """Read and check a multilabel corrections file; a missing file (or None) is no corrections.

    Raises:
        DataError: one line per bad row (file, line, value): an unknown class, an empty or
            repeated item_id; or a missing column.
    """
    if path is None or not Path(path).exists():
        return LabelCorrections(sets={}, source=str(path or ""))
    path = Path(path)
    index = {name: i for i, name in enumerate(class_names)}

    def label_set(label: str) -> np.ndarray | None:
        if label.strip() == DROP:
            return None
        names = split_labels(label)
        unknown = [name for name in names if name not in index]
        if unknown:
            raise ValueError(
                f"label {unknown[0]!r} is not a class; expected class names joined "
                f"by '|' from {list(class_names)}, or {DROP!r}"
            )
        row = np.zeros(len(class_names), dtype=bool)
        row[[index[name] for name in names]] = True
        return row

    sets, first_line = read_correction_rows(path, label_set)
    return LabelCorrections(sets=sets, source=str(path), lines=first_line)


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
