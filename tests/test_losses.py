"""The multi-label loss, the unlabeled losses and the ramp-up (selftrain.losses)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from selftrain.losses import (
    WithRotationHead,
    consistency_loss,
    rampup_weight,
    rotate_batch,
    soft_binary_cross_entropy,
)
from selftrain.models import create_model


def _bce(p: float, t: float) -> float:
    """Binary cross-entropy of probability p against target t, by hand."""
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def test_soft_binary_cross_entropy_is_the_hand_computed_bce_against_the_soft_vector():
    # sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4.
    logits = torch.tensor([[0.0, math.log(3)], [-math.log(3), 0.0]])
    targets = torch.tensor([[0.5, 0.25], [1.0, 0.0]])
    row0 = (_bce(0.5, 0.5) + _bce(0.75, 0.25)) / 2
    row1 = (_bce(0.25, 1.0) + _bce(0.5, 0.0)) / 2
    assert soft_binary_cross_entropy(logits, targets).item() == pytest.approx((row0 + row1) / 2)
    weighted = soft_binary_cross_entropy(logits, targets, torch.tensor([3.0, 1.0]))
    assert weighted.item() == pytest.approx((3 * row0 + row1) / 4)


def test_soft_binary_cross_entropy_with_a_zero_weight_row_ignores_it():
    logits = torch.tensor([[2.0, -1.0], [5.0, 5.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    loss = soft_binary_cross_entropy(logits, targets, torch.tensor([1.0, 0.0]))
    assert loss.item() == pytest.approx((_bce(1 / (1 + math.exp(-2)), 1.0) + _bce(1 / (1 + math.exp(1)), 0.0)) / 2)
    loss.backward()
    assert logits.grad[1].abs().sum() == 0


def test_a_few_sigmoid_bce_steps_on_a_fixed_batch_lower_the_loss():
    torch.manual_seed(0)
    model = create_model(8, 1, 0.0, 0.0, 4)
    images = torch.randn(8, 3, 16, 16)
    # Label sets of several labels each, one empty, and one soft row.
    targets = torch.tensor(
        [[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 1, 1], [1, 0, 0, 1], [0, 1, 1, 0], [0, 0, 0, 1]]
    ).float()
    targets[1] = torch.tensor([0.2, 0.9, 0.1, 0.4])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = soft_binary_cross_entropy(model(images), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_consistency_loss_trains_strong_view_on_confident_weak_labels():
    weak = torch.tensor([[10.0, 0.0], [0.1, 0.0]])  # row 0 confident (class 0), row 1 not
    strong = torch.tensor([[0.0, 1.0], [0.0, 1.0]], requires_grad=True)
    loss, mask = consistency_loss(weak, strong, threshold=0.9)
    assert mask.tolist() == [1.0, 0.0]
    expected = F.cross_entropy(strong[:1], torch.tensor([0])) / 2  # averaged over both rows
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert strong.grad[1].abs().sum() == 0  # the unconfident row gives no gradient


def test_consistency_loss_sends_no_gradient_through_the_weak_view():
    weak = torch.tensor([[5.0, 0.0]], requires_grad=True)
    strong = torch.tensor([[0.0, 1.0]], requires_grad=True)
    loss, _ = consistency_loss(weak, strong, threshold=0.5)
    loss.backward()
    assert weak.grad is None


def test_rotation_targets_match_the_applied_rotation():
    images = torch.randn(32, 3, 6, 6)
    rotated, turns = rotate_batch(images, torch.Generator().manual_seed(0))
    assert set(turns.tolist()) == {0, 1, 2, 3}
    for image, out, k in zip(images, rotated, turns):
        assert torch.equal(out, torch.rot90(image, int(k), dims=(1, 2)))


def test_rotation_head_predicts_four_rotations_from_the_classifier_features():
    net = create_model(8, 1, 0.0, 0.0, 5).eval()
    model = WithRotationHead(net).eval()
    images, rotated = torch.randn(3, 3, 16, 16), torch.randn(4, 3, 16, 16)
    logits, rotation_logits = model(images, rotated)
    assert logits.shape == (3, 5) and rotation_logits.shape == (4, 4)
    # The class logits are the classifier's own (eval mode: batch-norm uses running stats).
    assert torch.allclose(logits, net(images), atol=1e-5)


@pytest.mark.parametrize("step,expected", [(0, 0.0), (50, 0.5), (100, 1.0), (250, 1.0)])
def test_rampup_is_linear_from_zero_to_one(step, expected):
    assert rampup_weight(step, 100) == pytest.approx(expected)


def test_no_rampup_is_full_weight_at_once():
    assert rampup_weight(0, 0) == 1.0
