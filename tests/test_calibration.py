"""Temperature scaling and calibration measures (selftrain.calibration)."""

from __future__ import annotations

import numpy as np
import pytest

from selftrain.calibration import expected_calibration_error, fit_temperature, nll, reliability, softmax


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


def test_no_rows_means_no_calibration():
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=np.int64)) == 1.0
