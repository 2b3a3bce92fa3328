"""The built-in ``ood`` step: drop pool rows whose out-of-distribution score is too high.

Configured by ``refine.ood`` (`selftrain.refine.ood_config`); the score is infer's
``ood_score`` column (`selftrain.ood`).
"""

from __future__ import annotations

import pandas as pd

from selftrain.refine.ood_config import OodConfig, describe, ood_scores
from selftrain.refine.report import RuleStats
from selftrain.refine.state import RowState


def apply_ood(config: OodConfig, table: pd.DataFrame, state: RowState) -> RuleStats:
    """Drop the live rows of `table` whose ood_score is above the threshold."""
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
