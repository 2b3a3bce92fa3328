"""benchmarks/calibration_bounds: the temperature bounds on a planted over-confident model."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.calibration_bounds import calibrated_ece_floor, generation_bounds
from selftrain.calibration import expected_calibration_error


def test_bounds_find_the_planted_temperature():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(3000, 5)) * 2.0
    probs = np.exp(base) / np.exp(base).sum(axis=1, keepdims=True)
    # Labels drawn from softmax(base): calibrated at T = 3 once the logits are tripled.
    labels = np.array([rng.choice(5, p=p) for p in probs])
    row = generation_bounds(3.0 * base, labels, fitted=1.0)
    assert row["test_nll_temperature"] == pytest.approx(3.0, rel=0.1)
    # An unscaled model: "after" is "before"; at the planted temperature ECE falls several-fold.
    assert row["ece_after"] == row["ece_before"]
    assert row["ece_at_test_nll_temperature"] < row["ece_before"] / 3
    # The grid minimum is a lower bound on every temperature tried, the NLL one included.
    assert row["min_ece_over_temperatures"] <= row["ece_at_test_nll_temperature"]
    assert 2.0 < row["argmin_temperature"] < 4.0


def _confident_probs(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(rows, 10)) * 4.0
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_ece_floor_is_sampling_noise_that_shrinks_with_the_rows():
    small, large = _confident_probs(360, 1), _confident_probs(20000, 1)
    floor_small, _ = calibrated_ece_floor(small, below=0.0, draws=200)
    floor_large, _ = calibrated_ece_floor(large, below=0.0, draws=20)
    # A calibrated model still reads a positive ECE on a few hundred rows; on many rows
    # the reading tends to 0 (about 1/sqrt(N)).
    assert floor_small > 0.01
    assert floor_large < floor_small / 4


def test_ece_floor_share_counts_readings_at_most_the_bound():
    probs = _confident_probs(360, 2)
    floor, none = calibrated_ece_floor(probs, below=0.0, draws=100)
    _, every = calibrated_ece_floor(probs, below=1.0, draws=100)
    _, some = calibrated_ece_floor(probs, below=floor, draws=100)
    assert (none, every) == (0.0, 1.0)
    assert 0.0 < some < 1.0


def test_an_over_confident_model_reads_far_above_the_floor():
    rng = np.random.default_rng(3)
    probs = _confident_probs(2000, 3)
    # Truth follows much softer probabilities than the model states.
    soft = probs ** 0.25 / (probs ** 0.25).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(10, p=p) for p in soft])
    floor, _ = calibrated_ece_floor(probs, below=0.0, draws=50)
    assert expected_calibration_error(probs, labels) > 5 * floor
