"""Multi-label label sets (selftrain.multilabel_predictions): thresholds and pseudo-label columns on hand-made arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from selftrain.errors import ConfigError
from selftrain.multilabel_predictions import class_thresholds, label_set_columns, predicted_sets

NAMES = ("bed", "dresser", "island")


def _entropy(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def test_thresholds_are_the_default_with_per_class_overrides_in_class_order():
    assert class_thresholds(NAMES, 0.5, {"island": 0.8}).tolist() == [0.5, 0.5, 0.8]
    assert class_thresholds(NAMES, 0.3).tolist() == [0.3, 0.3, 0.3]


@pytest.mark.parametrize(
    "default,overrides,message",
    [
        (0.5, {"sofa": 0.4}, r"class_thresholds: unknown class\(es\) \['sofa'\]"),
        (1.0, None, r"threshold: expected a number in \(0, 1\)"),
        (0.5, {"bed": 0.0}, r"class_thresholds.bed: expected a number in \(0, 1\)"),
    ],
)
def test_bad_thresholds_are_one_error_naming_the_key(default, overrides, message):
    with pytest.raises(ConfigError, match=message):
        class_thresholds(NAMES, default, overrides)


def test_a_probability_equal_to_its_threshold_is_predicted():
    assert predicted_sets(np.array([[0.5, 0.49, 0.8]]), np.array([0.5, 0.5, 0.8])).tolist() == [[True, False, True]]


def test_pseudo_label_columns_of_hand_made_rows():
    probs = np.array(
        [
            [0.9, 0.2, 0.7],  # bed and island (island's own threshold is 0.6)
            [0.1, 0.4, 0.55],  # nothing reaches its threshold
            [0.6, 0.95, 0.6],  # all three
        ]
    )
    thresholds = np.array([0.5, 0.5, 0.6])
    columns = label_set_columns(probs, NAMES, thresholds)
    assert columns["pred_labels"] == [["bed", "island"], [], ["bed", "dresser", "island"]]
    assert columns["scores"] == [[0.9, 0.7], [], [0.6, 0.95, 0.6]]
    # |p - t| per class: row 0 (0.4, 0.3, 0.1), row 1 (0.4, 0.1, 0.05), row 2 (0.1, 0.45, 0.0).
    assert columns["min_margin"] == pytest.approx([0.1, 0.05, 0.0])
    expected_entropy = [np.mean([_entropy(p) for p in row]) for row in probs]
    assert columns["mean_binary_entropy"] == pytest.approx(expected_entropy)


def test_certain_probabilities_have_zero_entropy_not_nan():
    columns = label_set_columns(np.array([[1.0, 0.0, 1.0]]), NAMES, np.full(3, 0.5))
    assert columns["pred_labels"] == [["bed", "island"]]
    assert columns["mean_binary_entropy"][0] == pytest.approx(0.0, abs=1e-9)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="2 class names for 3"):
        label_set_columns(np.zeros((1, 3)), NAMES[:2], np.full(3, 0.5))
    with pytest.raises(ValueError, match=r"thresholds \(C,\)"):
        predicted_sets(np.zeros((1, 3)), np.full(2, 0.5))
