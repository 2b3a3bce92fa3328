"""Running a model over images unnoised: batches of probabilities or logits, and ood scores.

Inference here is without noise: eval mode (no dropout, no stochastic depth) and a
DALI pipeline with `train=False` (no augmentation, fixed order), so batches come in
the order of the rows given.

Probabilities follow params `task` (`selftrain.calibration.output_probs`): a softmax
over the classes (multiclass), one sigmoid per class (multilabel).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from selftrain.augment import create_loader, resolve_device, torch_device
from selftrain.calibration import output_probs
from selftrain.config import AugmentConfig, Params
from selftrain.data import Dataset, input_normalization, input_size
from selftrain.errors import ConfigError, DataError
from selftrain.normalization import IMAGENET, Normalization
from selftrain.ood import FEATURE_SCORES, Centroids, OodScorer, capture_features, score_kind


@torch.no_grad()
def predict_batches(
    model: nn.Module,
    paths: Sequence[str],
    *,
    image_size: int,
    batch_size: int,
    augment: AugmentConfig,
    device: str,
    logits: bool = False,
    normalization: Normalization = IMAGENET,
    task: str = "multiclass",
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (indices (B,) into `paths`, class probabilities (B, C)) batch by batch,
    in the order of `paths`; with `logits`, the model's raw outputs (B, C) instead.
    Images are normalised by `normalization` (`selftrain.data.input_normalization`);
    `task` (params `task`) says how outputs become probabilities."""
    model.eval().to(torch_device(device))
    loader = create_loader(
        paths,
        image_size=image_size,
        batch_size=batch_size,
        train=False,
        augment=augment,
        normalization=normalization,
    )
    for images, idx in loader:
        out = model(images).float()
        yield idx.numpy(), (out if logits else output_probs(out, task)).cpu().numpy()


def predict_probs(model: nn.Module, paths: Sequence[str], **options) -> np.ndarray:
    """Class probabilities (N, C), row i for paths[i] (raw outputs with `logits=True`); for
    splits that fit in memory. `options` are `predict_batches`' keyword arguments."""
    probs: np.ndarray | None = None
    for idx, batch_probs in predict_batches(model, paths, **options):
        if probs is None:
            probs = np.empty((len(paths), batch_probs.shape[1]), dtype=np.float32)
        probs[idx] = batch_probs
    assert probs is not None, "create_loader refuses an empty pool"
    return probs


def predict_split(
    model: nn.Module, dataset: Dataset, rows: pd.DataFrame, params: Params, logits: bool = False
) -> np.ndarray:
    """Probabilities (N, C) for manifest rows of `dataset` (raw outputs with `logits`)."""
    return predict_probs(model, dataset.resolve(rows["path"]), logits=logits, **_split_options(dataset, params))


def summarize_probs(probs: np.ndarray) -> dict[str, np.ndarray]:
    """pred, confidence (top-1), margin (top-1 minus top-2), entropy (nats) per row."""
    top2 = np.sort(probs, axis=1)[:, -2:]  # (N, 2): second-best, best
    entropy = -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=1)
    return {
        "pred": probs.argmax(axis=1).astype(np.int64),
        "confidence": top2[:, 1].astype(np.float64),
        "margin": (top2[:, 1] - top2[:, 0]).astype(np.float64),
        "entropy": entropy.astype(np.float64),
    }


def predict_scored(
    model: nn.Module, dataset: Dataset, rows: pd.DataFrame, params: Params, scorer: OodScorer
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (indices (B,) into `rows`, probabilities (B, C), ood scores (B,)) batch by
    batch from one forward pass; the probabilities are those `predict_batches` gives."""
    with capture_features(model) if scorer.needs_features else nullcontext() as capture:
        for idx, logits in _batches(model, dataset, rows, params):
            probs = output_probs(torch.from_numpy(logits), params.task).numpy()
            yield idx, probs, scorer.score(logits, capture.features if capture else None)


def fit_ood_scorer(model: nn.Module, dataset: Dataset, params: Params) -> OodScorer:
    """The `infer.ood_score` scorer; a feature score first places the class centroids from
    the teacher's penultimate features of the labeled rows."""
    kind = score_kind(params, model)
    if kind not in FEATURE_SCORES:
        return OodScorer(kind, task=params.task)
    if params.task == "multilabel":
        # The centroids are one per class of single-label rows; a label set (or an empty
        # one) places an image in no single class.
        raise ConfigError(
            f"infer.ood_score: {kind!r} places one centroid per class from single-label rows; "
            "task multilabel has label sets: use max_prob or energy"
        )
    labeled = dataset.labeled()
    if labeled.empty:
        raise DataError(f"infer.ood_score: {kind!r} needs labeled rows to place the class centroids; none")
    features: np.ndarray | None = None
    with capture_features(model) as capture:
        for idx, _ in _batches(model, dataset, labeled, params):
            if features is None:
                features = np.empty((len(labeled), capture.features.shape[1]), dtype=np.float64)
            features[idx] = capture.features
    labels = labeled["label"].to_numpy(dtype=np.int64)
    return OodScorer(kind, Centroids.fit(features, labels, dataset.num_classes))


def _batches(
    model: nn.Module, dataset: Dataset, rows: pd.DataFrame, params: Params
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(indices (B,) into `rows`, calibrated logits (B, C)) per batch, unnoised."""
    return predict_batches(model, dataset.resolve(rows["path"]), logits=True, **_split_options(dataset, params))


def _split_options(dataset: Dataset, params: Params) -> dict:
    """`predict_batches`' keyword arguments for this dataset's images under `params`."""
    return {
        "image_size": input_size(dataset, params.data),
        "batch_size": params.infer.batch_size,
        "augment": params.augment,
        "device": resolve_device(params.augment.device),
        "normalization": input_normalization(dataset, params.data),
        "task": params.task,
    }
