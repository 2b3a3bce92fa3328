"""Temperature scaling and calibration measures (selftrain.calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from selftrain.calibration import (
    calibrated_ece_readings,
    ece_noise_floor,
    ece_of_bins,
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability,
    softmax,
)


def overconfident(n=2000, seed=0):
    """Logits of a model right 70% of the time but about 99% sure of every answer."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    pred = np.where(rng.random(n) < 0.7, labels, (labels + 1) % 4)
    logits = np.zeros((n, 4))
    logits[np.arange(n), pred] = 6.0
    return logits, labels


def test_fitted_temperature_lowers_nll_of_an_overconfident_model():
    logits, labels = overconfident()
    temperature = fit_temperature(logits, labels)
    assert temperature > 2.0
    assert nll(logits, labels, temperature) < nll(logits, labels) - 0.3
    # Scaling changes no prediction.
    assert (softmax(logits, temperature).argmax(1) == softmax(logits).argmax(1)).all()
    assert expected_calibration_error(softmax(logits, temperature), labels) < 0.05 < expected_calibration_error(
        softmax(logits), labels
    )


def test_ece_by_hand():
    # Two rows at confidence 0.9 (one right), two at 0.6 (both right).
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    # bin of 0.9: |0.5 - 0.9| * 2/4; bin of 0.6: |1.0 - 0.6| * 2/4
    assert expected_calibration_error(probs, labels) == pytest.approx(0.2 + 0.2)
    bins = reliability(probs, labels)
    assert [(b["count"], b["accuracy"]) for b in bins] == [(2, 1.0), (2, 0.5)]
    # The same ECE from the bins a caller already holds (evaluate keeps them for the report).
    assert ece_of_bins(bins) == pytest.approx(0.2 + 0.2)
    assert ece_of_bins([]) == 0.0


def test_no_rows_means_no_calibration():
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=np.int64)) == 1.0


def _confident_probs(rows: int, seed: int) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(rows, 10)) * 4.0
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_each_calibrated_reading_is_the_ece_of_labels_drawn_from_the_confidences():
    probs = _confident_probs(300, 0)
    readings = calibrated_ece_readings(probs, draws=3, seed=7)
    # The same draws, by hand: right with probability = top probability, else another class.
    rng = np.random.default_rng(7)
    right = rng.random((3, 300)) < probs.max(axis=1)
    predicted = probs.argmax(axis=1)
    for k in range(3):
        labels = np.where(right[k], predicted, (predicted + 1) % 10)
        assert readings[k] == pytest.approx(expected_calibration_error(probs, labels))


def test_ece_floor_is_sampling_noise_that_shrinks_with_the_rows():
    floor_small = ece_noise_floor(_confident_probs(360, 1), draws=200)
    floor_large = ece_noise_floor(_confident_probs(20000, 1), draws=20)
    # A calibrated model still reads a positive ECE on a few hundred rows; on many rows the
    # reading tends to 0 (about 1/sqrt(N)).
    assert floor_small > 0.01
    assert floor_large < floor_small / 4
    assert ece_noise_floor(np.zeros((0, 10))) == 0.0


def test_an_over_confident_model_reads_far_above_the_floor():
    rng = np.random.default_rng(3)
    probs = _confident_probs(2000, 3)
    # Truth follows much softer probabilities than the model states.
    soft = probs**0.25 / (probs**0.25).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(10, p=p) for p in soft])
    assert expected_calibration_error(probs, labels) > 5 * ece_noise_floor(probs, draws=50)


def test_prior_pulls_a_few_rows_temperature_toward_one_and_leaves_many_rows_alone():
    logits, labels = overconfident()
    few = fit_temperature(logits[:10], labels[:10])
    few_with_prior = fit_temperature(logits[:10], labels[:10], prior_std=0.5)
    assert few > 1.5
    # Pulled toward 1 (fails with no prior: the two fits are then the same number)...
    assert few_with_prior < few, (few_with_prior, few)
    # ...but not past it: the ten rows still say over-confident.
    assert few_with_prior > 1.0, few_with_prior
    # The MAP optimum: mean NLL + (log T)^2 / (2 std^2 n) is lower there than at the no-prior T.
    def penalised(t):
        return nll(logits[:10], labels[:10], t) + np.log(t) ** 2 / (2 * 0.5**2 * 10)
    assert penalised(few_with_prior) < penalised(few)
    many = fit_temperature(logits, labels)
    assert fit_temperature(logits, labels, prior_std=0.5) == pytest.approx(many, rel=0.03)


def test_binary_prior_pulls_toward_one_too():
    from selftrain.calibration import fit_binary_temperature

    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, (12, 3)).astype(float)
    # Sure of every class, right 70% of the time.
    right = rng.random((12, 3)) < 0.7
    logits = np.where(right == (targets == 1), 6.0, -6.0)
    free = fit_binary_temperature(logits, targets)
    with_prior = fit_binary_temperature(logits, targets, prior_std=0.5)
    assert free > 1.5
    assert with_prior < free, (with_prior, free)  # the same number when the prior is not applied
    assert with_prior > 1.0, with_prior


def all_right(n=144, seed=2):
    """Logits of a model that gets every row right, by a margin of 1 to 5."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    logits = rng.normal(size=(n, 10))
    logits[np.arange(n), labels] = logits.max(axis=1) + rng.uniform(1.0, 5.0, n)
    return logits, labels


def test_rows_with_no_error_keep_temperature_one():
    from selftrain.calibration import MIN_TEMPERATURE, separable

    logits, labels = all_right()
    assert separable(logits, labels)
    # The NLL keeps falling as T shrinks: an unregularised minimum does not exist.
    assert nll(logits, labels, 0.2) < nll(logits, labels, 0.5) < nll(logits, labels, 1.0)
    assert fit_temperature(logits, labels) == 1.0
    # A prior gives the fit a minimum: below 1 (the rows say sharpen), above the clip.
    with_prior = fit_temperature(logits, labels, prior_std=0.25)
    assert MIN_TEMPERATURE < with_prior < 1.0, with_prior


def test_one_error_is_enough_to_fit():
    from selftrain.calibration import separable

    logits, labels = all_right()
    labels[0] = (labels[0] + 1) % 10  # now the model is wrong on row 0
    assert not separable(logits, labels)
    temperature = fit_temperature(logits, labels)
    assert temperature != 1.0
    assert nll(logits, labels, temperature) < nll(logits, labels)


def test_a_tie_is_not_separable():
    from selftrain.calibration import separable

    logits = np.array([[2.0, 2.0], [3.0, 0.0]])
    assert not separable(logits, np.array([0, 0]))
    assert separable(logits[1:], np.array([0]))


def test_binary_rows_with_no_error_keep_temperature_one():
    from selftrain.calibration import binary_separable, fit_binary_temperature

    targets = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    logits = np.where(targets == 1, 3.0, -2.0)
    assert binary_separable(logits, targets)
    assert fit_binary_temperature(logits, targets) == 1.0
    logits[1, 1] = 0.5  # one class on the wrong side of 0
    assert not binary_separable(logits, targets)
    assert fit_binary_temperature(logits, targets) != 1.0
