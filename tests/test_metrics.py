"""Classification metrics on a planted confusion, against hand counts and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support, precision_score, recall_score

from selftrain.metrics import classification_metrics, confusion_rows

NAMES = ("cat", "dog", "owl", "yak")
# Rows: true class, columns: predicted class. "yak" never occurs and is never predicted.
CONFUSION = np.array(
    [
        [5, 1, 0, 0],
        [2, 3, 1, 0],
        [0, 0, 4, 0],
        [0, 0, 0, 0],
    ]
)


def planted() -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) with exactly CONFUSION's counts, in a shuffled order."""
    pairs = [(t, p) for t in range(4) for p in range(4) for _ in range(CONFUSION[t, p])]
    order = np.random.default_rng(0).permutation(len(pairs))
    y = np.array(pairs)[order]
    return y[:, 0], y[:, 1]


def test_metrics_equal_the_hand_counts_of_the_planted_confusion():
    y_true, y_pred = planted()
    metrics = classification_metrics(y_true, y_pred, NAMES)
    assert metrics["accuracy"] == pytest.approx(12 / 16)
    cat, dog, owl, yak = (metrics["per_class"][n] for n in NAMES)
    assert (cat["precision"], cat["recall"], cat["support"]) == (pytest.approx(5 / 7), pytest.approx(5 / 6), 6)
    assert (dog["precision"], dog["recall"], dog["support"]) == (pytest.approx(3 / 4), pytest.approx(3 / 6), 6)
    assert (owl["precision"], owl["recall"], owl["support"]) == (pytest.approx(4 / 5), pytest.approx(1.0), 4)
    assert yak == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    f1 = [2 * p * r / (p + r) for p, r in ((5 / 7, 5 / 6), (3 / 4, 3 / 6), (4 / 5, 1.0))]
    assert [cat["f1"], dog["f1"], owl["f1"]] == pytest.approx(f1)
    # Macro over every class of the model, the absent one included (as a zero).
    assert metrics["macro_f1"] == pytest.approx(sum(f1) / 4)


def test_metrics_agree_with_scikit_learn():
    y_true, y_pred = planted()
    metrics = classification_metrics(y_true, y_pred, NAMES)
    labels = list(range(4))
    assert metrics["macro_f1"] == pytest.approx(
        f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )
    precision = precision_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    assert [metrics["per_class"][n]["precision"] for n in NAMES] == pytest.approx(precision)
    assert [metrics["per_class"][n]["recall"] for n in NAMES] == pytest.approx(recall)


def test_metrics_agree_with_scikit_learn_on_random_predictions():
    rng = np.random.default_rng(1)
    names = [f"c{i}" for i in range(12)]
    # Classes 10 and 11 never occur; 11 is never predicted either, 10 sometimes is.
    y_true = rng.integers(0, 10, size=500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 11, size=500))
    metrics = classification_metrics(y_true, y_pred, names)
    labels = list(range(12))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    assert [metrics["per_class"][n]["precision"] for n in names] == pytest.approx(precision)
    assert [metrics["per_class"][n]["recall"] for n in names] == pytest.approx(recall)
    assert [metrics["per_class"][n]["f1"] for n in names] == pytest.approx(f1)
    assert [metrics["per_class"][n]["support"] for n in names] == list(support)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert metrics["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def test_confusion_rows_name_each_prediction():
    y_true, y_pred = planted()
    rows = confusion_rows(y_true, y_pred, NAMES)
    assert list(rows.columns) == ["actual", "predicted"]
    assert rows["actual"].tolist() == [NAMES[t] for t in y_true]
    counts = rows.groupby(["actual", "predicted"]).size()
    assert counts[("dog", "cat")] == 2 and counts[("cat", "cat")] == 5 and len(rows) == CONFUSION.sum()
