"""benchmarks/temperature_small_val.py: scoring temperatures fitted on small val subsets."""

from __future__ import annotations

import numpy as np

from benchmarks.temperature_small_val import subset_rows
from selftrain.calibration import nll


def _sure_logits(n, rng, right_share):
    """Logits of a 4-class model sure of every answer (logit 6), right `right_share` of the time."""
    labels = rng.integers(0, 4, n)
    pred = np.where(rng.random(n) < right_share, labels, (labels + 1) % 4)
    logits = np.zeros((n, 4))
    logits[np.arange(n), pred] = 6.0
    return logits, labels


def test_a_prior_keeps_ten_val_items_temperatures_near_one():
    rng = np.random.default_rng(0)
    val_logits, val_labels = _sure_logits(100, rng, 0.95)
    test_logits, test_labels = _sure_logits(400, rng, 0.95)
    rows = subset_rows(val_logits, val_labels, test_logits, test_labels, size=10, draws=30, prior_stds=[None, 0.25])
    # The prior's temperatures lie nearer T = 1.
    assert abs(np.log(rows["0.25"]["temperature_median"])) < abs(np.log(rows["none"]["temperature_median"]))
    # Ten items at 95% are error-free in ~60% of the draws. Unpenalised, such a subset used
    # to drive T to the 0.05 clip and the test NLL far above T = 1's (the worst decile
    # several times over); now the fit keeps T = 1 there, so even the worst decile
    # without a prior is within 10% of not calibrating.
    uncalibrated = nll(test_logits, test_labels)
    assert rows["none"]["test_nll_worst_decile"] < 1.1 * uncalibrated
    # The whole split is one fit, whatever the draws.
    whole = subset_rows(val_logits, val_labels, test_logits, test_labels, size=100, draws=30, prior_stds=[None])
    assert whole["none"]["share_worse_than_uncalibrated"] in (0.0, 1.0)
