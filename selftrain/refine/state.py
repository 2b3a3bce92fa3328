"""Per-row refinement state and the moves every rule makes on it: drop, relabel, note.

A drop is final and skips rows a `keep` rule exempted; each move is counted in the
rule's `RuleStats`, so the report accounts for every change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from selftrain.refine.report import RuleStats


@dataclass
class RowState:
    """Per-row refinement state, positional (N,) arrays."""

    labels: np.ndarray  # int64 current class; a dropped row keeps its last one
    kept: np.ndarray  # bool
    exempt: np.ndarray  # bool, set by `keep`: exempt from later drops
    weight: np.ndarray  # float64
    copies: np.ndarray  # int64
    dropped_by: list[str | None]
    rules: list[list[str]]
    # Per-row threshold overrides set by rules: {class index or None (any class): t}.
    thresholds: list[dict[int | None, float] | None]

    @classmethod
    def start(cls, pred: np.ndarray) -> "RowState":
        n = len(pred)
        return cls(
            labels=pred.copy(),
            kept=np.ones(n, dtype=bool),
            exempt=np.zeros(n, dtype=bool),
            weight=np.ones(n, dtype=np.float64),
            copies=np.ones(n, dtype=np.int64),
            dropped_by=[None] * n,
            rules=[[] for _ in range(n)],
            thresholds=[None] * n,
        )

    def drop(self, mask: np.ndarray, stats: RuleStats) -> np.ndarray:
        """Drop the live, non-exempt rows of `mask`; return the rows actually dropped."""
        hit = mask & self.kept & ~self.exempt
        stats.exempted += int((mask & self.kept & self.exempt).sum())
        rows = np.flatnonzero(hit)
        stats.record_drop(rows, self.labels[rows].copy())
        self.kept[rows] = False
        for i in rows.tolist():
            self.dropped_by[i] = stats.name
        return hit

    def relabel(self, mask: np.ndarray, new: np.ndarray, stats: RuleStats) -> np.ndarray:
        """Give the live rows of `mask` their class from `new` (N,); return the rows changed."""
        hit = mask & self.kept & (self.labels != new)
        rows = np.flatnonzero(hit)
        stats.record_relabel(rows, self.labels[rows].copy(), new[rows].copy())
        self.labels[rows] = new[rows]
        return hit

    def note(self, mask: np.ndarray, stats: RuleStats) -> None:
        rows = np.flatnonzero(mask)
        stats.changed += len(rows)
        for i in rows.tolist():
            self.rules[i].append(stats.name)


def weight_and_keep(rule, state, matched: np.ndarray, stats) -> np.ndarray:
    """A rule's `weight` and `keep` actions on its matched rows, for either task's state
    (both hold `weight` and `exempt`); returns the rows they changed."""
    changed = np.zeros(len(matched), dtype=bool)
    if rule.weight is not None and rule.weight != 1.0:
        state.weight[matched] *= rule.weight
        stats.weighted = int(matched.sum())
        changed |= matched
    if rule.keep:
        newly = matched & ~state.exempt
        state.exempt |= matched
        stats.marked_keep = int(newly.sum())
        changed |= newly
    return changed


def cap_and_duplicate(
    groups: np.ndarray, num_groups: int, per_class: int | None, certainty: np.ndarray, state, stats, empty_note: str
) -> None:
    """Balancing, for either task's state: groups (N,) (index per kept row, -1 for dropped
    rows) above `per_class` lose their least certain rows; groups below it raise their rows'
    `copies` up to it. `per_class` None: the median size of the non-empty groups, rounded up.
    Exempt rows are cut last; ties go by input order, so the result is deterministic."""
    counts = np.bincount(groups[groups >= 0], minlength=num_groups)
    present = counts[counts > 0]
    if present.size == 0:
        stats.note = empty_note
        return
    per_class = per_class or int(math.ceil(np.median(present)))
    stats.per_class = per_class
    changed = np.zeros(len(state.kept), dtype=bool)
    for group in range(num_groups):
        rows = np.flatnonzero(groups == group)
        if rows.size == 0 or rows.size == per_class:
            continue
        order = rows[np.lexsort((rows, -certainty[rows], ~state.exempt[rows]))]
        if rows.size > per_class:
            surplus = np.zeros(len(state.kept), dtype=bool)
            surplus[order[per_class:]] = True
            changed |= state.drop(surplus, stats)
        else:
            each, extra = divmod(per_class, rows.size)
            state.copies[rows] = each
            state.copies[order[:extra]] += 1
            stats.copies_added += per_class - rows.size
            duplicated = np.zeros(len(state.kept), dtype=bool)
            duplicated[rows[state.copies[rows] > 1]] = True
            stats.duplicated += int(duplicated.sum())
            changed |= duplicated
    state.copies[~state.kept] = 0
    stats.matched = int(changed.sum())
    state.note(changed, stats)
