"""The built-in rules, run after the user's: threshold, margin, entropy, agreement, balance.

Each takes the row state, changes it in place and returns its `RuleStats`; the engine
runs them in this order (see `selftrain.refine.engine`).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd

from selftrain.refine.config import RefineConfig
from selftrain.refine.report import RuleStats
from selftrain.refine.state import RowState


def apply_threshold(config: RefineConfig, confidence: np.ndarray, state: RowState) -> RuleStats:
    """Drop live rows below their threshold: a rule's override, else the class's, else global."""
    overridden = any(t is not None for t in state.thresholds)
    stats = RuleStats(
        "threshold",
        "builtin",
        enabled=config.threshold is not None or bool(config.class_thresholds) or overridden,
    )
    limit = np.full(len(confidence), -np.inf if config.threshold is None else config.threshold)
    for class_index, value in config.class_thresholds:
        limit[state.labels == class_index] = value
    for i, override in enumerate(state.thresholds):
        if override:
            limit[i] = override.get(int(state.labels[i]), override.get(None, limit[i]))
    matched = state.kept & (confidence < limit)
    stats.matched = int(matched.sum())
    state.note(state.drop(matched, stats), stats)
    return stats


def apply_limit(
    name: str, bound: float | None, beyond: Callable[[float], np.ndarray], state: RowState
) -> RuleStats:
    """Drop the live rows beyond `bound` (margin below it, entropy above it); None: off."""
    stats = RuleStats(name, "builtin", enabled=bound is not None)
    if bound is None:
        return stats
    matched = state.kept & beyond(bound)
    stats.matched = int(matched.sum())
    state.note(state.drop(matched, stats), stats)
    return stats


def apply_agreement(
    config: RefineConfig, has_previous: bool, pred: np.ndarray, prev_pred: pd.Series, state: RowState
) -> RuleStats:
    """Drop live rows whose pred differs from the previous round's (rows it never saw pass)."""
    stats = RuleStats("agreement", "builtin", enabled=config.agreement)
    if not config.agreement:
        return stats
    if not has_previous:
        stats.note = "no previous round; nothing compared"
        return stats
    known = prev_pred.notna().to_numpy(dtype=bool)
    previous = prev_pred.to_numpy(dtype=np.int64, na_value=-1)
    matched = state.kept & known & (previous != pred)
    stats.matched = int(matched.sum())
    stats.note = f"{int(known.sum())} rows had a previous prediction"
    state.note(state.drop(matched, stats), stats)
    return stats


def apply_balance(config: RefineConfig, confidence: np.ndarray, state: RowState) -> RuleStats:
    """Cap classes above `per_class` and raise `copies` of classes below it."""
    stats = RuleStats("balance", "builtin", enabled=config.balance.enabled)
    state.copies[:] = state.kept.astype(np.int64)
    if not config.balance.enabled:
        return stats
    counts = np.bincount(state.labels[state.kept], minlength=config.num_classes)
    present = counts[counts > 0]
    if present.size == 0:
        stats.note = "no rows kept"
        return stats
    per_class = config.balance.per_class or int(math.ceil(np.median(present)))
    stats.per_class = per_class
    changed = np.zeros(len(state.kept), dtype=bool)
    for class_index in range(config.num_classes):
        rows = np.flatnonzero(state.kept & (state.labels == class_index))
        if rows.size == 0 or rows.size == per_class:
            continue
        # Exempt rows first, then most confident, then input order: deterministic.
        order = rows[np.lexsort((rows, -confidence[rows], ~state.exempt[rows]))]
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
    return stats

