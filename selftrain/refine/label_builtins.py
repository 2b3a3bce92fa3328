"""The built-in rules of a multi-label round, run after the user's: ood, threshold, margin,
entropy, agreement, balance (the multiclass order, `selftrain.refine.builtin_rules`).

What each means when a row is an image with a label set:

- ``ood``: as in multiclass, drop rows whose ``ood_score`` is above ``refine.ood``'s threshold.
- ``threshold``: nothing to do here. ``multilabel.threshold`` and ``class_thresholds`` already
  decided each image's set at infer (a class is in the set when its sigmoid probability
  reaches its threshold); the report lists the step, off, with that note.
- ``margin``: ``refine.min_margin`` drops images whose ``min_margin`` (the distance of the
  least certain class's probability to its threshold) is below it: one decision of the
  set was a coin toss.
- ``entropy``: ``refine.max_entropy`` drops images whose ``mean_binary_entropy`` (nats,
  mean over classes) is above it.
- ``agreement``: drops images whose predicted set differs from the previous round's
  predicted set (``pred_labels`` of both rounds, before any rule); images the previous
  round did not see pass.
- ``balance``: by the rarest label an image carries. Each kept image joins one group:
  the label of its set that the fewest kept images carry (ties: the lower class index),
  or the group of images with an empty set. Groups above ``per_class`` keep their
  ``keep``-exempt images, then the most certain (largest ``min_margin``; ties: input
  order); groups below it raise ``copies`` so the group totals ``per_class`` training
  rows. ``per_class`` is ``refine.balance.per_class``, else the median size of the
  groups that kept an image (rounded up), the empty-set group counting as one. Grouping
  by the rarest label means duplicating an image to lift a rare label never counts
  toward a common one's cap, so rare labels gain copies and common ones are capped
  mostly through images that carry nothing rarer.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from selftrain.refine import builtin_rules, ood
from selftrain.refine.config import RefineConfig
from selftrain.refine.label_sets import LabelRuleStats, LabelSetState
from selftrain.refine.ood_config import OodConfig
from selftrain.refine.state import cap_and_duplicate

# The group name of images whose set is empty, in the report's `groups`.
EMPTY_GROUP = "(no label)"
THRESHOLD_NOTE = (
    "applied at infer: each image's set holds the classes whose probability reaches "
    "multilabel.threshold / class_thresholds (refine.threshold is the multiclass confidence filter)"
)


def builtin(name: str, enabled: bool) -> LabelRuleStats:
    return LabelRuleStats(name, kind="builtin", enabled=enabled)


def apply_ood(config: OodConfig, table: pd.DataFrame, state: LabelSetState) -> LabelRuleStats:
    """Drop the live images of `table` whose ood_score is above the threshold."""
    return ood.apply_ood(config, table, state, builtin("ood", config.enabled))


def threshold_step() -> LabelRuleStats:
    """The threshold step's report entry: off, since infer applied the thresholds."""
    stats = builtin("threshold", False)
    stats.note = THRESHOLD_NOTE
    return stats


def apply_limit(
    name: str, bound: float | None, beyond: Callable[[float], np.ndarray], state: LabelSetState
) -> LabelRuleStats:
    """Drop the live images beyond `bound` (min_margin below it, entropy above it); None: off."""
    return builtin_rules.apply_limit(name, bound, beyond, state, builtin(name, bound is not None))


def apply_agreement(
    enabled: bool,
    predicted: np.ndarray,
    previous: tuple[np.ndarray, np.ndarray] | None,
    state: LabelSetState,
) -> LabelRuleStats:
    """Drop live images whose predicted set differs from the previous round's.

    predicted (N, C) bool; previous: the previous round's (N, C) bool sets and the (N,)
    bool mask of images it saw, or None when there is no previous round.
    """
    stats = builtin("agreement", enabled)
    if not enabled:
        return stats
    if previous is None:
        stats.note = "no previous round; nothing compared"
        return stats
    sets, known = previous
    matched = state.kept & known & (sets != predicted).any(axis=1)
    stats.matched = int(matched.sum())
    stats.note = f"{int(known.sum())} images had a previous prediction"
    state.note(state.drop(matched, stats), stats)
    return stats


def rarest_label_groups(sets: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """(N,) group of each image: the class index of its rarest label among the kept images'
    sets (ties: lower index), C for an empty set, -1 for a dropped image. sets (N, C) bool."""
    n, c = sets.shape
    carriers = sets[kept].sum(axis=0)  # (C,) kept images carrying each label
    cost = np.where(sets, carriers[None, :], np.iinfo(np.int64).max)  # (N, C)
    groups = np.where(sets.any(axis=1), cost.argmin(axis=1), c) if n else np.zeros(0, dtype=np.int64)
    return np.where(kept, groups, -1).astype(np.int64)


def apply_balance(
    config: RefineConfig, certainty: np.ndarray, state: LabelSetState
) -> LabelRuleStats:
    """Cap groups of the rarest label above `per_class` and raise `copies` of those below it
    (see the module docstring). certainty (N,): the order in which a capped group keeps images."""
    stats = builtin("balance", config.balance.enabled)
    state.copies[:] = state.kept.astype(np.int64)
    if not config.balance.enabled:
        return stats
    names = (*config.class_names, EMPTY_GROUP)
    groups = rarest_label_groups(state.sets, state.kept)
    counts = np.bincount(groups[state.kept], minlength=len(names))
    stats.groups = {names[g]: int(n) for g, n in enumerate(counts.tolist()) if n}
    cap_and_duplicate(groups, len(names), config.balance.per_class, certainty, state, stats, "no images kept")
    return stats
