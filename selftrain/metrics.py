"""Classification metrics for a generation's model on a split, and the rows of its DVC plots."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> dict:
    """accuracy, macro_f1 and per-class precision/recall/f1/support of class indices.

    Counted from the confusion matrix with numpy: scikit-learn's package import (~2.4 s)
    would be paid by every evaluate process for a few divisions. A class never true nor
    predicted scores 0 (scikit-learn's zero_division=0; tests compare the two)."""
    n = len(class_names)
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    confusion = np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)
    true_positive = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    zeros = np.zeros(n, dtype=np.float64)
    precision = np.divide(true_positive, predicted, out=zeros.copy(), where=predicted > 0)
    recall = np.divide(true_positive, support, out=zeros.copy(), where=support > 0)
    # F1 = 2TP / (2TP + FP + FN), and 2TP + FP + FN = predicted + support.
    f1 = np.divide(2 * true_positive, predicted + support, out=zeros.copy(), where=(predicted + support) > 0)
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    }
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": float(np.mean(f1)),
        "per_class": per_class,
    }


def confusion_rows(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """One row per prediction, `actual`/`predicted` class names: DVC's confusion template input."""
    names = np.asarray(class_names, dtype=object)
    return pd.DataFrame({"actual": names[y_true], "predicted": names[y_pred]})



# The row/column of the multi-label confusion plot for "not this class".
NO_LABEL = "(none)"


def label_set_confusion_rows(truth: np.ndarray, predicted: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """The multi-label analogue of `confusion_rows` for DVC's confusion template: one row per
    (image, class) where the class is true or predicted. A hit is (c, c); a missed label is
    (c, NO_LABEL); a false label is (NO_LABEL, c). truth, predicted: (N, C) bool."""
    rows, classes = np.nonzero(truth | predicted)  # row-major: image by image, classes in order
    names = np.asarray(class_names, dtype=object)
    return pd.DataFrame(
        {
            "actual": np.where(truth[rows, classes], names[classes], NO_LABEL),
            "predicted": np.where(predicted[rows, classes], names[classes], NO_LABEL),
        }
    )


def per_class_rows(class_names: Sequence[str], ap: Sequence[float | None], per_class: dict) -> pd.DataFrame:
    """The per-class DVC plot: ``class``, ``ap`` (empty when the class has no test positive),
    ``f1`` and ``support``, one row per class in class order."""
    return pd.DataFrame(
        {
            "class": list(class_names),
            "ap": [np.nan if value is None else float(value) for value in ap],
            "f1": [float(per_class[name]["f1"]) for name in class_names],
            "support": [int(per_class[name]["support"]) for name in class_names],
        }
    )
