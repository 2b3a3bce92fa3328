"""The training losses: soft-target cross-entropy, its multi-label counterpart (sigmoid
binary cross-entropy), FixMatch consistency (softmax and per-class sigmoid), rotation
prediction (SESEMI), and the ramp-up of the pseudo-labelled part."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Rotations by 0, 90, 180 and 270 degrees: the rotation head's 4 classes.
NUM_ROTATIONS = 4


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Weighted cross-entropy against soft targets.

    logits (B, C), targets (B, C) rows summing to 1, weights (B,) -> scalar.
    With one-hot targets this is the ordinary cross-entropy.
    """
    per_row = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1)  # (B,)
    return (weights * per_row).sum() / weights.sum().clamp_min(1e-12)


def soft_binary_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Weighted multi-label loss: one sigmoid per class, binary cross-entropy against
    soft or hard per-class targets.

    logits (B, C), targets (B, C) each in [0, 1] (0/1 for hard labels; a row need not
    sum to 1), weights (B,) or None for equal rows -> scalar. Per row the mean over
    classes, so the scale does not grow with the number of classes; then the
    weighted mean over rows, as `soft_cross_entropy` does.
    """
    per_class = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # (B, C)
    per_row = per_class.mean(dim=1)  # (B,)
    if weights is None:
        return per_row.mean()
    return (weights * per_row).sum() / weights.sum().clamp_min(1e-12)


def consistency_loss(
    weak_logits: torch.Tensor, strong_logits: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """FixMatch's unlabeled loss: the weak view's confident class trains the strong view.

    weak_logits, strong_logits (U, C) of two views of the same U images. Returns
    (scalar loss averaged over all U rows, mask (U,) of rows whose weak confidence
    reached `threshold`). No gradient flows through the weak view.
    """
    with torch.no_grad():
        confidence, hard = torch.softmax(weak_logits.detach().float(), dim=1).max(dim=1)  # (U,), (U,)
        mask = (confidence >= threshold).float()
    per_row = F.cross_entropy(strong_logits, hard, reduction="none")  # (U,)
    return (per_row * mask).mean(), mask


def binary_consistency_loss(
    weak_logits: torch.Tensor, strong_logits: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """FixMatch's unlabeled loss for the multi-label task, per (row, class) decision.

    weak_logits, strong_logits (U, C) of two views of the same U images. A class of a
    row counts when the weak view's sigmoid is confident either way (p >= threshold:
    present, p <= 1 - threshold: absent); its hard 0/1 decision then trains the strong
    view's logit by binary cross-entropy. Returns (scalar loss averaged over all U x C
    pairs, as `consistency_loss` averages over all rows; mask (U, C) of the pairs kept).
    No gradient flows through the weak view.
    """
    with torch.no_grad():
        probs = torch.sigmoid(weak_logits.detach().float())  # (U, C)
        hard = (probs >= 0.5).float()
        mask = ((probs >= threshold) | (probs <= 1.0 - threshold)).float()
    per_pair = F.binary_cross_entropy_with_logits(strong_logits, hard, reduction="none")  # (U, C)
    return (per_pair * mask).mean(), mask


def rotate_batch(images: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate each image of (B, 3, S, S) by a random multiple of 90 degrees.

    Returns (rotated (B, 3, S, S), rotation index (B,) in 0..3: k quarter turns
    counter-clockwise, torch.rot90's sense).
    """
    turns = torch.randint(0, NUM_ROTATIONS, (images.shape[0],), generator=generator).to(images.device)
    rotated = images.clone()
    for k in range(1, NUM_ROTATIONS):
        chosen = turns == k
        if chosen.any():
            rotated[chosen] = torch.rot90(images[chosen], k, dims=(2, 3))
    return rotated, turns


class WithRotationHead(nn.Module):
    """The classifier plus a linear head that predicts an image's rotation from the
    classifier's pooled features (training only; the head is not saved)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.rotation = nn.Linear(net.feature_dim, NUM_ROTATIONS)

    def forward(self, images: torch.Tensor, rotated: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # One forward over both batches: batch-norm sees them together.
        n = images.shape[0]
        features = self.net.features(torch.cat([images, rotated]))  # (B + R, F)
        logits = self.net.head[2:](features[:n])  # dropout + classifier: (B, C)
        return logits, self.rotation(features[n:])  # (R, 4)


def rampup_weight(step: int, rampup_steps: int) -> float:
    """Linear ramp of the pseudo-labelled loss: 0 at step 0, 1 from `rampup_steps` on."""
    if rampup_steps <= 0:
        return 1.0
    return min(1.0, step / rampup_steps)


__all__ = [
    "NUM_ROTATIONS",
    "WithRotationHead",
    "binary_consistency_loss",
    "consistency_loss",
    "rampup_weight",
    "rotate_batch",
    "soft_binary_cross_entropy",
    "soft_cross_entropy",
]
