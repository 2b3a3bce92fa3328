"""benchmarks/calibration_bounds: the temperature bounds on a planted over-confident model."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.calibration_bounds import generation_bounds


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
    # Unscaled and over-confident: the ECE read is far above what a calibrated model reads,
    # and such a model would read at most half of it in most draws on 3000 rows.
    assert row["ece_before"] > 3 * row["calibrated_ece_floor"]
    assert row["calibrated_share_at_most_half"] > 0.9
