"""The built-in ``ood`` step: drop pool rows whose out-of-distribution score is too high.

Configured by ``refine.ood`` (`selftrain.refine.ood_config`); the score is infer's
``ood_score`` column (`selftrain.ood`).
"""

from __future__ import annotations

import pandas as pd

from selftrain.refine.label_sets import LabelRuleStats, LabelSetState
from selftrain.refine.ood_config import OodConfig, describe, ood_scores
from selftrain.refine.report import RuleStats
from selftrain.refine.state import RowState


def apply_ood(
    config: OodConfig, table: pd.DataFrame, state: RowState | LabelSetState, stats: LabelRuleStats | None = None
) -> RuleStats | LabelRuleStats:
    """Drop the live rows of `table` whose ood_score is above the threshold.

    `stats` is the step's report entry when the round keeps another kind (a multi-label
    round's `LabelRuleStats`, where a row is an image and `state` its label sets).
    """
    if stats is None:
        stats = RuleStats("ood", "builtin", enabled=config.enabled)
    if not config.enabled:
        return stats
    assert config.threshold is not None, "resolve_threshold runs before the step"
    stats.description = describe(config)
    matched = state.kept & (ood_scores(table, "pseudo-labels") > config.threshold)
    stats.matched = int(matched.sum())
    state.note(state.drop(matched, stats), stats)
    return stats


__all__ = ["apply_ood"]
