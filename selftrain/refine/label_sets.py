"""Multi-label rows' label sets: read from a list column, changed by rules, and each change counted.

An image's label set is a row of an (N, C) bool matrix, True where the class is in the
set. `LabelSetState` holds the sets and the per-row state of a multi-label round and
makes the rules' moves (drop, add a label, remove a label), recording each in the
rule's `LabelRuleStats`; `judge_label_changes` scores those records against the true
label sets (the canary ``true_labels``) once refinement is finished.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from selftrain.errors import DataError


def read_label_sets(
    frame: pd.DataFrame, column: str, class_names: tuple[str, ...], table: str, allow_null: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) bool sets and (N,) bool known mask from a column of class-name lists.

    An empty list is a valid set (no labels). A null cell is unknown where
    `allow_null` (the truth of a row nobody labelled), an error otherwise.

    Raises:
        DataError: naming the table, column, row and the bad value.
    """
    index = {name: i for i, name in enumerate(class_names)}
    cells = frame[column].tolist()
    sets = np.zeros((len(cells), len(class_names)), dtype=bool)
    known = np.ones(len(cells), dtype=bool)
    for row, cell in enumerate(cells):
        if cell is None or (isinstance(cell, float) and np.isnan(cell)):
            if not allow_null:
                raise DataError(f"{table}.{column}: null at {_row(frame, row)}; an image with no labels is []")
            known[row] = False
            continue
        if isinstance(cell, str) or not isinstance(cell, (list, tuple, np.ndarray)):
            raise DataError(
                f"{table}.{column}: {_row(frame, row)} holds {cell!r}; expected a list of class names"
            )
        for label in list(cell):
            if not isinstance(label, str) or label not in index:
                raise DataError(
                    f"{table}.{column}: {_row(frame, row)} has unknown class {label!r}; known: {list(class_names)}"
                )
            sets[row, index[label]] = True
    return sets, known


def label_lists(sets: np.ndarray, class_names: tuple[str, ...]) -> list[list[str]]:
    """Each row of (N, C) `sets` as its class names, in class order."""
    return [[class_names[c] for c in np.flatnonzero(row).tolist()] for row in sets]


def _row(frame: pd.DataFrame, i: int) -> str:
    if "item_id" in frame.columns:
        return f"row {i} (item_id {frame['item_id'].iloc[i]!r})"
    return f"row {i}"


@dataclass
class LabelRuleStats:
    """What one rule or built-in did to a multi-label round: rows it hit and each label it moved."""

    name: str
    description: str = ""
    kind: str = "rule"  # "rule", "builtin" or "corrections"
    enabled: bool = True
    note: str = ""
    matched: int = 0  # live rows its condition selected
    changed: int = 0  # rows that got its name appended to `rules`
    dropped: int = 0
    exempted: int = 0  # rows it would have dropped but an earlier `keep` protected
    weighted: int = 0
    marked_keep: int = 0
    sets_changed: int = 0  # rows whose label set it changed
    duplicated: int = 0  # balance: rows whose copies it raised above 1
    copies_added: int = 0  # balance: extra training rows it added by duplication
    per_class: int | None = None  # balance: the resolved count per group
    groups: dict[str, int] | None = None  # balance: kept images per group before it ran
    added: Counter = field(default_factory=Counter)  # class index -> rows it was added to
    removed: Counter = field(default_factory=Counter)  # class index -> rows it was removed from
    # For precision: (row, class) of each label moved; rows dropped and the set each carried.
    moves: dict[str, list[tuple[np.ndarray, int]]] = field(
        default_factory=lambda: {"added": [], "removed": []}
    )
    drop_rows: list[np.ndarray] = field(default_factory=list)
    drop_sets: list[np.ndarray] = field(default_factory=list)

    def as_dict(self, class_names: tuple[str, ...]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "enabled": self.enabled,
            "matched": self.matched,
            "changed": self.changed,
            "dropped": self.dropped,
            "exempted": self.exempted,
            "weighted": self.weighted,
            "marked_keep": self.marked_keep,
            "sets_changed": self.sets_changed,
            "labels_added": {class_names[c]: n for c, n in sorted(self.added.items())},
            "labels_removed": {class_names[c]: n for c, n in sorted(self.removed.items())},
            "duplicated": self.duplicated,
            "copies_added": self.copies_added,
        }
        if self.per_class is not None:
            entry["per_class"] = self.per_class
        if self.groups is not None:
            entry["groups"] = self.groups
        if self.description:
            entry["description"] = self.description
        if self.note:
            entry["note"] = self.note
        return entry


@dataclass
class LabelSetState:
    """Per-row state of a multi-label round: positional (N,) arrays and the (N, C) sets."""

    sets: np.ndarray  # (N, C) bool, the current label sets; a dropped row keeps its last one
    kept: np.ndarray  # (N,) bool
    exempt: np.ndarray  # (N,) bool, set by `keep`: exempt from later drops
    weight: np.ndarray  # (N,) float64
    dropped_by: list[str | None]
    rules: list[list[str]]
    copies: np.ndarray  # (N,) int64 training copies; set by the balance built-in

    @classmethod
    def start(cls, sets: np.ndarray) -> "LabelSetState":
        n = len(sets)
        return cls(
            sets=sets.copy(),
            kept=np.ones(n, dtype=bool),
            exempt=np.zeros(n, dtype=bool),
            weight=np.ones(n, dtype=np.float64),
            dropped_by=[None] * n,
            rules=[[] for _ in range(n)],
            copies=np.ones(n, dtype=np.int64),
        )

    def drop(self, mask: np.ndarray, stats: LabelRuleStats) -> np.ndarray:
        """Drop the live, non-exempt rows of `mask`; return the rows actually dropped."""
        hit = mask & self.kept & ~self.exempt
        stats.exempted += int((mask & self.kept & self.exempt).sum())
        rows = np.flatnonzero(hit)
        stats.dropped += len(rows)
        stats.drop_rows.append(rows)
        stats.drop_sets.append(self.sets[rows].copy())
        self.kept[rows] = False
        for i in rows.tolist():
            self.dropped_by[i] = stats.name
        return hit

    def move(self, mask: np.ndarray, class_index: int, add: bool, stats: LabelRuleStats) -> np.ndarray:
        """Add (or remove) `class_index` to the sets of the live rows of `mask`; return the rows changed."""
        has = self.sets[:, class_index]
        hit = mask & self.kept & (~has if add else has)
        rows = np.flatnonzero(hit)
        self.sets[rows, class_index] = add
        kind = "added" if add else "removed"
        if len(rows):
            getattr(stats, kind)[class_index] += len(rows)
            stats.moves[kind].append((rows, class_index))
        return hit

    def note(self, mask: np.ndarray, stats: LabelRuleStats) -> None:
        rows = np.flatnonzero(mask)
        stats.changed += len(rows)
        for i in rows.tolist():
            self.rules[i].append(stats.name)


def judge_label_changes(stats: LabelRuleStats, truth: np.ndarray, known: np.ndarray) -> dict[str, Any]:
    """Label-level precision of one rule's changes against the (N, C) true sets.

    An added label is right when it is in the image's true set, a removed label when it
    is not; ``labels`` pools both. A drop is judged per image: right when the set the
    image carried was not its true set; ``overall`` pools label moves and drops. Rows
    whose truth is unknown are not judged.
    """
    judged: dict[str, Any] = {}
    for kind in ("added", "removed"):
        right = total = 0
        for rows, class_index in stats.moves[kind]:
            rows = rows[known[rows]]
            in_truth = truth[rows, class_index]
            right += int(in_truth.sum() if kind == "added" else (~in_truth).sum())
            total += len(rows)
        judged[kind] = _count(right, total)
    judged["labels"] = _count(
        judged["added"]["right"] + judged["removed"]["right"], judged["added"]["judged"] + judged["removed"]["judged"]
    )
    right = total = 0
    for rows, sets in zip(stats.drop_rows, stats.drop_sets):
        seen = known[rows]
        right += int((sets[seen] != truth[rows[seen]]).any(axis=1).sum())
        total += int(seen.sum())
    judged["drop"] = _count(right, total)
    # As in multiclass (relabels and drops), the figure a rule is judged by on val.
    judged["overall"] = _count(
        judged["labels"]["right"] + judged["drop"]["right"], judged["labels"]["judged"] + judged["drop"]["judged"]
    )
    return judged


def _count(right: int, judged: int) -> dict[str, Any]:
    return {"right": right, "judged": judged, "precision": right / judged if judged else None}
