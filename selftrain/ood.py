"""Out-of-distribution scores of pool items: higher means less like the labeled data.

`infer.ood_score` picks one ("auto": `score_kind`); infer writes it per row as
``ood_score`` (pool and val), and refine's ``ood`` step drops rows above a threshold
(`selftrain.refine.ood`).

- ``max_prob``: 1 - the calibrated top-1 probability (Hendrycks & Gimpel 2017); in the
  multi-label task the largest per-class sigmoid, so an image that shows none of the
  classes scores high as well.
- ``energy``: -logsumexp of the calibrated logits, i.e. -logsumexp(z / T) with the
  model's fitted temperature T (Liu et al. 2020's energy without the T prefactor;
  T = 1 for an uncalibrated model). Needs no extra pass. The same formula in the
  multi-label task.
- ``mahalanobis``: distance to the nearest labeled class centroid in the penultimate
  feature space, under one covariance shared by the classes (Lee et al. 2018),
  Ledoit-Wolf shrunk towards a scaled identity so a few dozen labeled rows give a
  usable inverse.
- ``cosine``: 1 - the largest cosine similarity to a labeled class centroid.
  The two feature scores need one class per labeled row: the multi-label task refuses
  them (`selftrain.prediction.fit_ood_scorer`).

Penultimate features are the input of the model's last `nn.Linear` (a forward
pre-hook), which holds for resnet-s3 and torchvision's classifiers alike.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn

from selftrain.calibration import output_probs
from selftrain.errors import ConfigError, DataError
from selftrain.params_schema import OOD_SCORE_CHOICES as OOD_SCORES
from selftrain.params_schema import Params
# Scores measured in the penultimate feature space: they need the labeled centroids.
FEATURE_SCORES = ("mahalanobis", "cosine")


def max_prob_score(probs: np.ndarray) -> np.ndarray:
    """1 - max probability per row of probs (N, C)."""
    return 1.0 - np.asarray(probs, dtype=np.float64).max(axis=1)


def energy_score(logits: np.ndarray) -> np.ndarray:
    """-logsumexp over classes of logits (N, C) (already divided by the temperature)."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(z - top).sum(axis=1)))


@dataclass(frozen=True)
class Centroids:
    """Per-class means (C, D) of labeled features and the shared shrunk precision (D, D)."""

    means: np.ndarray
    precision: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, num_classes: int) -> "Centroids":
        """From labeled features (N, D) and class indices (N,); every class needs a row."""
        x = np.asarray(features, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.int64)
        missing = sorted(set(range(num_classes)) - set(labels.tolist()))
        if missing:
            raise DataError(f"ood centroids: no labeled row of class index {missing[0]} to place its centroid")
        means = np.stack([x[labels == c].mean(axis=0) for c in range(num_classes)])
        centered = x - means[labels]
        if len(x) > 1:
            covariance = ledoit_wolf_covariance(centered)
        else:
            covariance = np.eye(x.shape[1])
        # A constant feature (e.g. a dead ReLU) leaves the covariance singular even shrunk.
        covariance = covariance + 1e-6 * max(np.trace(covariance) / x.shape[1], 1e-12) * np.eye(x.shape[1])
        return cls(means=means, precision=np.linalg.pinv(covariance, hermitian=True))


def ledoit_wolf_covariance(centered: np.ndarray) -> np.ndarray:
    """The Ledoit-Wolf shrunk covariance (D, D) of rows (N, D) whose mean is taken as zero:
    `sklearn.covariance.ledoit_wolf(x, assume_centered=True)`, unblocked, in numpy.

    Written out because scikit-learn's package import (~2.4 s) would be paid by every infer
    process for a few matrix products; tests compare the two."""
    n, d = centered.shape
    empirical = centered.T @ centered / n
    if d == 1:
        return empirical  # one feature: the same whatever the shrinkage
    squared = centered**2
    variances = squared.sum(axis=0) / n
    mu = variances.sum() / d
    beta_sum = np.sum(squared.T @ squared)
    delta_sum = np.sum(empirical**2)  # the squared coefficients of X'X, over n^2
    beta = (beta_sum / n - delta_sum) / (d * n)
    delta = (delta_sum - 2.0 * mu * variances.sum() + d * mu**2) / d
    # Never shrink by more than 1 (that would invert the covariances).
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    shrunk = (1.0 - shrinkage) * empirical
    shrunk.flat[:: d + 1] += shrinkage * mu
    return shrunk


def mahalanobis_score(features: np.ndarray, centroids: Centroids) -> np.ndarray:
    """Distance of each row of features (N, D) to its nearest class centroid."""
    x = np.asarray(features, dtype=np.float64)
    xp = x @ centroids.precision  # (N, D)
    mp = centroids.means @ centroids.precision  # (C, D)
    # (x - m)' P (x - m) = x'Px - 2 x'Pm + m'Pm, for every row and class: (N, C).
    squared = (xp * x).sum(axis=1, keepdims=True) - 2 * xp @ centroids.means.T + (mp * centroids.means).sum(axis=1)
    return np.sqrt(np.clip(squared, 0.0, None)).min(axis=1)


def cosine_score(features: np.ndarray, centroids: Centroids) -> np.ndarray:
    """1 - the largest cosine similarity of each row of features (N, D) to a centroid."""
    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    m = centroids.means / np.maximum(np.linalg.norm(centroids.means, axis=1, keepdims=True), 1e-12)
    return 1.0 - (x @ m.T).max(axis=1)


@dataclass(frozen=True)
class OodScorer:
    """One of OOD_SCORES, with the labeled centroids when it is a feature score."""

    kind: str
    centroids: Centroids | None = None
    # params `task`: max_prob reads the softmax (multiclass) or per-class sigmoids (multilabel).
    task: str = "multiclass"

    def __post_init__(self):
        if self.kind not in OOD_SCORES:
            raise ConfigError(f"infer.ood_score: must be one of {list(OOD_SCORES)}, got {self.kind!r}")
        if self.kind in FEATURE_SCORES and self.centroids is None:
            raise ValueError(f"the {self.kind} score needs the labeled centroids")

    @property
    def needs_features(self) -> bool:
        return self.kind in FEATURE_SCORES

    def score(self, logits: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """(N,) scores of calibrated logits (N, C) and penultimate features (N, D)."""
        if self.kind == "max_prob":
            return max_prob_score(output_probs(torch.as_tensor(logits, dtype=torch.float64), self.task).numpy())
        if self.kind == "energy":
            return energy_score(logits)
        assert features is not None and self.centroids is not None
        if self.kind == "mahalanobis":
            return mahalanobis_score(features, self.centroids)
        return cosine_score(features, self.centroids)


def score_kind(params: Params, model: nn.Module) -> str:
    """The score infer writes: infer.ood_score, or for "auto" the one the OOD benchmark
    measured best (BENCHMARKS.md, "OOD"): mahalanobis, which kept 0.2% of the OOD images
    at refine.ood's quantile 0.95 where energy, max_prob and cosine kept about half. Energy
    where mahalanobis cannot run: task multilabel (label sets place no class centroids;
    unmeasured there) and a model without an nn.Linear head."""
    if params.infer.ood_score != "auto":
        return params.infer.ood_score
    if params.task == "multilabel" or not linear_layers(model):
        return "energy"
    return "mahalanobis"


def reference_digest(kind: str, labeled: pd.DataFrame) -> str:
    """What besides the teacher shapes a score: its kind, and for feature scores the
    labeled rows the centroids come from (part of each pseudo-label part's fingerprint)."""
    digest = hashlib.sha256(kind.encode())
    if kind in FEATURE_SCORES:
        digest.update(pd.util.hash_pandas_object(labeled[["item_id", "path", "label"]], index=False).to_numpy())
    return digest.hexdigest()


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The model's `nn.Linear` layers in module order."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def last_linear(model: nn.Module) -> nn.Linear:
    """The model's last `nn.Linear` in module order: its classifier head."""
    linears = linear_layers(model)
    if not linears:
        raise ConfigError(
            f"infer.ood_score: feature scores {list(FEATURE_SCORES)} need a model whose output layer is "
            f"an nn.Linear; {type(model).__name__} has none (use max_prob or energy)"
        )
    return linears[-1]


class FeatureCapture:
    """The input of the last `nn.Linear` at the latest forward call: features (B, D)."""

    def __init__(self):
        self.features: np.ndarray | None = None

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.features = inputs[0].detach().float().reshape(inputs[0].shape[0], -1).cpu().numpy()


@contextmanager
def capture_features(model: nn.Module) -> Iterator[FeatureCapture]:
    """Record the penultimate features of every forward call while the block runs."""
    capture = FeatureCapture()
    handle = last_linear(model).register_forward_pre_hook(capture)
    try:
        yield capture
    finally:
        handle.remove()


__all__ = [
    "FEATURE_SCORES",
    "OOD_SCORES",
    "Centroids",
    "FeatureCapture",
    "OodScorer",
    "score_kind",
    "capture_features",
    "cosine_score",
    "energy_score",
    "last_linear",
    "ledoit_wolf_covariance",
    "mahalanobis_score",
    "max_prob_score",
    "reference_digest",
]
