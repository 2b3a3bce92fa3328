"""Label sets of the multi-label task: per-class thresholds, and what a probability matrix predicts.

In the multi-label task each class has its own sigmoid probability; an image's
predicted label set is every class whose probability reaches that class's threshold
(a global default, overridden per class by name). `label_set_columns` gives the
pseudo-label table's per-row columns for it, as `selftrain.prediction.summarize_probs`
does for the multi-class task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from selftrain.errors import ConfigError

if TYPE_CHECKING:
    from selftrain.config import Params

# Probabilities are clipped this far from 0 and 1 before a log (an entropy of exactly
# 0/1 outputs is 0, not nan).
_EPS = 1e-12


def class_thresholds(
    class_names: Sequence[str], default: float, overrides: Mapping[str, float] | None = None
) -> np.ndarray:
    """Per-class thresholds (C,) in class order: `default`, or the override named for a class.

    Raises:
        ConfigError: a threshold outside (0, 1), or an override naming an unknown class.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(class_names))
    if unknown:
        raise ConfigError(f"class_thresholds: unknown class(es) {unknown}; classes are {list(class_names)}")
    for key, value in (("threshold", default), *((f"class_thresholds.{k}", v) for k, v in overrides.items())):
        # Strictly inside: 0 would predict every class, 1 none but exact ones.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
            raise ConfigError(f"{key}: expected a number in (0, 1), got {value!r}")
    return np.array([float(overrides.get(name, default)) for name in class_names], dtype=np.float64)


def decision_thresholds(params: "Params", class_names: Sequence[str]) -> np.ndarray:
    """Per-class thresholds (C,) of a multilabel run: `multilabel.threshold`, overridden by
    `multilabel.class_thresholds`; errors name the params key."""
    try:
        return class_thresholds(class_names, params.multilabel.threshold, params.multilabel.class_thresholds)
    except ConfigError as exc:
        raise ConfigError(f"multilabel.{exc}") from None


def predicted_sets(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Which classes each row predicts: probs (N, C) >= thresholds (C,) -> bool (N, C)."""
    probs = np.asarray(probs, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if probs.ndim != 2 or thresholds.shape != (probs.shape[1],):
        raise ValueError(f"probs (N, C) and thresholds (C,) expected, got {probs.shape} and {thresholds.shape}")
    return probs >= thresholds


def label_set_columns(
    probs: np.ndarray, class_names: Sequence[str], thresholds: np.ndarray
) -> dict[str, list | np.ndarray]:
    """The multi-label pseudo-label columns of probs (N, C), one value per row:

    - ``pred_labels``: the predicted class names, in class order (empty when no
      probability reaches its threshold);
    - ``scores``: the probability of each predicted label, in the same order;
    - ``min_margin``: min over classes of |p - threshold|, how close the row's least
      certain decision is to flipping;
    - ``mean_binary_entropy``: the mean over classes of each sigmoid's entropy (nats).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if len(class_names) != probs.shape[1]:
        raise ValueError(f"{len(class_names)} class names for {probs.shape[1]} probability columns")
    chosen = predicted_sets(probs, thresholds)  # (N, C)
    names = np.asarray(class_names, dtype=object)
    p = np.clip(probs, _EPS, 1.0 - _EPS)
    entropy = -(p * np.log(p) + (1.0 - p) * np.log(1.0 - p))  # (N, C)
    return {
        "pred_labels": [list(names[row]) for row in chosen],
        "scores": [[float(x) for x in probs_row[row]] for probs_row, row in zip(probs, chosen)],
        "min_margin": np.abs(probs - thresholds).min(axis=1),
        "mean_binary_entropy": entropy.mean(axis=1),
    }
