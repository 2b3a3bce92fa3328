"""The built-in rules, run after the user's: threshold, margin, entropy, agreement, balance.

Each takes the row state, changes it in place and returns its `RuleStats`; the engine
runs them in this order (see `selftrain.refine.engine`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from selftrain.refine.config import RefineConfig
from selftrain.refine.label_sets import LabelRuleStats, LabelSetState
from selftrain.refine.report import RuleStats
from selftrain.refine.state import RowState, cap_and_duplicate


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
    name: str,
    bound: float | None,
    beyond: Callable[[float], np.ndarray],
    state: RowState | LabelSetState,
    stats: LabelRuleStats | None = None,
) -> RuleStats | LabelRuleStats:
    """Drop the live rows beyond `bound` (margin below it, entropy above it); None: off.

    `stats` is the step's report entry when the round keeps another kind (a multi-label
    round's `LabelRuleStats`, where a row is an image and `state` its label sets).
    """
    if stats is None:
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
    groups = np.where(state.kept, state.labels, -1)
    cap_and_duplicate(
        groups, config.num_classes, config.balance.per_class, confidence, state, stats, "no rows kept"
    )
    return stats
