"""Multi-label metrics of a generation's model on a split: mAP, per-class AP, F1 at the thresholds, exact match.

Computed from a probability matrix (N, C) and a 0/1 target matrix (N, C):
- ``map``: macro mean average precision over the classes with at least one positive
  (a class with none has no defined AP; it is left out and named in
  ``classes_without_positives``); None when no class has a positive.
- ``per_class``: per class its ``ap`` (None without positives), ``f1``, ``support``
  (positives), ``predicted`` (rows predicting it) and ``threshold``.
- ``micro_f1`` (F1 of all (row, class) decisions pooled), ``macro_f1`` (mean of the
  per-class F1s) and ``exact_match`` (rows whose predicted set equals the true set),
  at the per-class thresholds (`selftrain.multilabel_predictions`).

F1 is 2TP / (2TP + FP + FN); a class neither present nor predicted has nothing to get
wrong and counts 1.0 (scikit-learn's ``zero_division=1.0``), so a val split that lacks
a class does not pull macro F1 down for a model that rightly never predicts it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from selftrain.multilabel_predictions import predicted_sets


def multilabel_metrics(
    probs: np.ndarray, targets: np.ndarray, class_names: Sequence[str], thresholds: np.ndarray
) -> dict:
    """map, micro_f1, macro_f1, exact_match, per_class and classes_without_positives
    (see the module docstring) of probs (N, C) against 0/1 targets (N, C)."""
    probs, truth = _checked(probs, targets, class_names)
    predicted = predicted_sets(probs, thresholds)  # (N, C)
    tp = (predicted & truth).sum(axis=0)  # (C,)
    fp = (predicted & ~truth).sum(axis=0)
    fn = (~predicted & truth).sum(axis=0)
    f1 = np.array([_f1(int(a), int(b), int(c)) for a, b, c in zip(tp, fp, fn)])
    support = truth.sum(axis=0)
    ap = [average_precision(probs[:, c], truth[:, c]) if support[c] else None for c in range(len(class_names))]
    scored = [value for value in ap if value is not None]
    per_class = {
        name: {
            "ap": ap[c],
            "f1": float(f1[c]),
            "support": int(support[c]),
            "predicted": int(predicted[:, c].sum()),
            "threshold": float(thresholds[c]),
        }
        for c, name in enumerate(class_names)
    }
    return {
        "map": float(np.mean(scored)) if scored else None,
        "micro_f1": _f1(int(tp.sum()), int(fp.sum()), int(fn.sum())),
        "macro_f1": float(f1.mean()),
        "exact_match": float((predicted == truth).all(axis=1).mean()),
        "per_class": per_class,
        "classes_without_positives": [name for name, n in zip(class_names, support) if n == 0],
    }


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """AP of one class: the sum over score thresholds, from the highest, of the
    recall gained times the precision there (scikit-learn's definition, no
    interpolation); rows with equal scores enter together.

    scores (N,), positives (N,) bool with at least one True.
    """
    order = np.argsort(-scores, kind="stable")
    scores, positives = scores[order], positives[order]
    # The last row of each run of equal scores: where a threshold admits the whole run.
    ends = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tps = np.cumsum(positives)[ends]  # (K,) true positives at each threshold
    precision = tps / (ends + 1)
    recall = tps / tps[-1]
    recall_gain = np.diff(np.r_[0.0, recall])
    return float((recall_gain * precision).sum())


def _f1(tp: int, fp: int, fn: int) -> float:
    """2TP / (2TP + FP + FN), 1.0 when there is nothing to get wrong."""
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 1.0


def _checked(probs: np.ndarray, targets: np.ndarray, class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(probs as float64, targets as bool), both (N, C) for C class names, or ValueError."""
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets)
    if probs.ndim != 2 or probs.shape != targets.shape or probs.shape[1] != len(class_names):
        raise ValueError(
            f"probs and targets must both be (N, {len(class_names)}); got {probs.shape} and {targets.shape}"
        )
    if len(probs) == 0:
        raise ValueError("no rows to evaluate")
    if not np.isin(targets, (0, 1)).all():
        raise ValueError("targets must be 0/1 (hard labels); threshold soft targets first")
    return probs, targets.astype(bool)
