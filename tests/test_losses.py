"""The unlabeled losses and the ramp-up (selftrain.losses)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from selftrain.losses import WithRotationHead, consistency_loss, rampup_weight, rotate_batch
from selftrain.models import create_model


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
