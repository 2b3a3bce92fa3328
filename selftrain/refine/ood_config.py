"""The ``refine.ood`` section: when the built-in ``ood`` step drops a row, and its threshold.

Schema (defaults in brackets)::

    refine:
      ood:
        enabled: false     # [false] off until measured (BENCHMARKS.md, OOD)
        threshold: null    # [null] drop rows with ood_score > threshold
        quantile: null     # [null] in (0, 1]: the threshold is this quantile of the
                           #   val split's ood_score (data/gen{k}/val_predictions.parquet)

Enabled, it needs exactly one of ``threshold`` and ``quantile``. The score itself,
and so its scale, is `infer.ood_score` (`selftrain.ood`): infer writes it per row.
The step (`selftrain.refine.ood`) runs after the user's rules (a ``keep`` rule exempts rows from it) and before
the other built-ins, so class balancing never duplicates what it dropped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from selftrain.errors import ConfigError, DataError
from selftrain.refine.values import check_bool, check_number

OOD_KEYS = ("enabled", "threshold", "quantile")
SCORE_COLUMN = "ood_score"


@dataclass(frozen=True)
class OodConfig:
    enabled: bool = False
    # The score above which a row is dropped; with `quantile`, resolved from val scores
    # by `resolve_threshold` before the step runs.
    threshold: float | None = None
    quantile: float | None = None
    # The val rows the quantile was taken over (None: the threshold was given).
    reference_rows: int | None = None


def parse_ood_config(raw: Any) -> OodConfig:
    """Validate ``refine.ood``; one `ConfigError` naming the key."""
    if raw is None:
        return OodConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"refine.ood: expected a mapping with {list(OOD_KEYS)}, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in OOD_KEYS)
    if unknown:
        raise ConfigError(f"refine.ood.{unknown[0]}: unknown key; allowed: {list(OOD_KEYS)}")
    enabled = check_bool(raw.get("enabled", False), "refine.ood.enabled")
    threshold = _number(raw.get("threshold"), "refine.ood.threshold")
    quantile = _number(raw.get("quantile"), "refine.ood.quantile")
    if quantile is not None and not 0.0 < quantile <= 1.0:
        raise ConfigError(f"refine.ood.quantile: must be in (0, 1], got {quantile!r}")
    if threshold is not None and quantile is not None:
        raise ConfigError("refine.ood.quantile: give threshold or quantile, not both")
    if enabled and threshold is None and quantile is None:
        raise ConfigError("refine.ood: enabled, but neither threshold nor quantile is set")
    return OodConfig(enabled=enabled, threshold=threshold, quantile=quantile)


def _number(value: Any, where: str) -> float | None:
    """`check_number`, or None; the message says null is allowed too."""
    if value is None:
        return None
    try:
        return check_number(value, where)
    except ConfigError:
        raise ConfigError(f"{where}: expected a finite number or null, got {value!r}") from None


def resolve_threshold(config: OodConfig, val: pd.DataFrame | None, gen: int) -> OodConfig:
    """`config` with the threshold of its quantile over `val`'s ood scores (unchanged
    when the step is off or the threshold was given)."""
    if not config.enabled or config.quantile is None:
        return config
    if val is None:
        raise ConfigError(
            f"refine.ood.quantile: set, but no val predictions to take it over "
            f"(infer@{gen} writes data/gen{gen}/val_predictions.parquet)"
        )
    scores = ood_scores(val, "val predictions")
    if len(scores) == 0:
        raise DataError("refine.ood.quantile: the val predictions have no rows to take the quantile over")
    value = float(np.quantile(scores, config.quantile))
    return dataclasses.replace(config, threshold=value, reference_rows=len(scores))


def describe(config: OodConfig) -> str:
    """What the step drops, in words (the rules report's description)."""
    if not config.enabled:
        return "off"
    where = f"; quantile {config.quantile} of {config.reference_rows} val scores" if config.quantile else ""
    return f"ood_score > {config.threshold:.6g}{where}"


def ood_settings(config: OodConfig) -> dict[str, Any]:
    """The step's entry in the rules report's settings."""
    return {"enabled": config.enabled, "threshold": config.threshold, "quantile": config.quantile}


def ood_scores(table: pd.DataFrame, what: str) -> np.ndarray:
    """(N,) float scores; a missing or null score is an error (infer writes one per row)."""
    if SCORE_COLUMN not in table.columns:
        raise DataError(
            f"refine.ood: the {what} have no {SCORE_COLUMN!r} column; rerun infer with this version"
        )
    scores = pd.to_numeric(table[SCORE_COLUMN], errors="coerce").to_numpy(dtype=np.float64)
    missing = np.flatnonzero(np.isnan(scores))
    if len(missing):
        raise DataError(f"refine.ood: the {what} have no {SCORE_COLUMN} at row {int(missing[0])}")
    return scores


__all__ = [
    "OOD_KEYS",
    "SCORE_COLUMN",
    "OodConfig",
    "describe",
    "ood_scores",
    "ood_settings",
    "parse_ood_config",
    "resolve_threshold",
]
