"""Multi-label metrics (selftrain.multilabel_metrics) against scikit-learn on random data, and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score

from selftrain.multilabel_metrics import average_precision, multilabel_metrics

NAMES = ("a", "b", "c", "d", "e")


def random_case(seed: int, rows: int = 60, decimals: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(probs, targets) (rows, 5): targets correlated with probs so the metrics are not trivial."""
    rng = np.random.default_rng(seed)
    probs = rng.random((rows, len(NAMES)))
    targets = (rng.random((rows, len(NAMES))) < 0.3 + 0.4 * probs).astype(np.int64)
    if decimals is not None:
        probs = np.round(probs, decimals)  # many tied scores
    return probs, targets


@pytest.mark.parametrize("seed,decimals", [(0, None), (1, None), (2, 1), (3, 0)])
def test_per_class_ap_and_map_equal_scikit_learn(seed, decimals):
    probs, targets = random_case(seed, decimals=decimals)
    metrics = multilabel_metrics(probs, targets, NAMES, np.full(5, 0.5))
    expected = [average_precision_score(targets[:, c], probs[:, c]) for c in range(5)]
    assert [metrics["per_class"][n]["ap"] for n in NAMES] == pytest.approx(expected)
    assert metrics["map"] == pytest.approx(np.mean(expected))
    assert metrics["classes_without_positives"] == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_f1_and_exact_match_at_per_class_thresholds_equal_scikit_learn(seed):
    probs, targets = random_case(seed)
    thresholds = np.array([0.5, 0.3, 0.7, 0.5, 0.9])
    predicted = (probs >= thresholds).astype(np.int64)
    metrics = multilabel_metrics(probs, targets, NAMES, thresholds)
    assert metrics["micro_f1"] == pytest.approx(f1_score(targets, predicted, average="micro"))
    assert metrics["macro_f1"] == pytest.approx(f1_score(targets, predicted, average="macro", zero_division=1.0))
    per_class = f1_score(targets, predicted, average=None, zero_division=1.0)
    assert [metrics["per_class"][n]["f1"] for n in NAMES] == pytest.approx(per_class)
    assert metrics["exact_match"] == pytest.approx((predicted == targets).all(axis=1).mean())
    assert [metrics["per_class"][n]["threshold"] for n in NAMES] == thresholds.tolist()
    assert [metrics["per_class"][n]["predicted"] for n in NAMES] == predicted.sum(axis=0).tolist()


def test_a_class_without_positives_is_left_out_of_the_map_and_named():
    probs, targets = random_case(4)
    targets[:, 2] = 0
    metrics = multilabel_metrics(probs, targets, NAMES, np.full(5, 0.5))
    assert metrics["per_class"]["c"]["ap"] is None
    assert metrics["per_class"]["c"]["support"] == 0
    assert metrics["classes_without_positives"] == ["c"]
    others = [average_precision_score(targets[:, k], probs[:, k]) for k in (0, 1, 3, 4)]
    assert metrics["map"] == pytest.approx(np.mean(others))
    # Predicting the absent class is wrong (F1 0); never predicting it has nothing wrong (F1 1).
    assert metrics["per_class"]["c"]["f1"] == 0.0
    never = multilabel_metrics(np.where(np.arange(5) == 2, 0.0, probs), targets, NAMES, np.full(5, 0.5))
    assert never["per_class"]["c"]["f1"] == 1.0


def test_no_positives_at_all_gives_no_map():
    metrics = multilabel_metrics(np.full((3, 5), 0.1), np.zeros((3, 5)), NAMES, np.full(5, 0.5))
    assert metrics["map"] is None
    assert metrics["classes_without_positives"] == list(NAMES)
    # Empty true sets, empty predicted sets: every row matches exactly.
    assert metrics["exact_match"] == 1.0 and metrics["micro_f1"] == 1.0


def test_empty_prediction_sets():
    targets = np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 1, 0, 0]])
    probs = np.full((3, 5), 0.2)  # below every threshold: every predicted set is empty
    metrics = multilabel_metrics(probs, targets, NAMES, np.full(5, 0.5))
    assert metrics["micro_f1"] == 0.0
    assert metrics["exact_match"] == pytest.approx(1 / 3)  # only the row with no true label matches
    assert [metrics["per_class"][n]["f1"] for n in NAMES] == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert metrics["macro_f1"] == pytest.approx(2 / 5)
    # All scores tied: AP is the positives' share.
    assert metrics["per_class"]["a"]["ap"] == pytest.approx(1 / 3)


def test_average_precision_of_a_perfect_and_a_reversed_ranking():
    positives = np.array([True, True, False, False])
    assert average_precision(np.array([0.9, 0.8, 0.2, 0.1]), positives) == 1.0
    # Positives ranked last: precision 1/3 then 2/4, each at half the recall.
    assert average_precision(np.array([0.1, 0.2, 0.8, 0.9]), positives) == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"must both be \(N, 5\)"):
        multilabel_metrics(np.zeros((2, 5)), np.zeros((2, 4)), NAMES, np.full(5, 0.5))
    with pytest.raises(ValueError, match="0/1"):
        multilabel_metrics(np.zeros((2, 5)), np.full((2, 5), 0.5), NAMES, np.full(5, 0.5))
    with pytest.raises(ValueError, match="no rows"):
        multilabel_metrics(np.zeros((0, 5)), np.zeros((0, 5)), NAMES, np.full(5, 0.5))
