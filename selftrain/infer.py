"""Unnoised prediction over a pool, and the round's pseudo-label table.

The teacher infers without noise: eval mode (no dropout, no stochastic depth)
and a DALI pipeline with `train=False` (no augmentation, fixed order).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from selftrain.augment import create_loader
from selftrain.augment import resolve_device
from selftrain.config import AugmentConfig, Params
from selftrain.data import Dataset
from selftrain.train import torch_device

# Columns of `pseudo_labels.parquet`, in order; later columns only ever get added.
PSEUDO_LABEL_COLUMNS = (
    "item_id",
    "path",
    "teacher_gen",
    "pred",
    "confidence",
    "margin",
    "entropy",
    "probs",
)


@torch.no_grad()
def predict_probs(
    model: nn.Module,
    paths: Sequence[str],
    *,
    image_size: int,
    batch_size: int,
    augment: AugmentConfig,
    device: str,
) -> np.ndarray:
    """Class probabilities (N, C), row i for paths[i]."""
    model.eval().to(torch_device(device))
    loader = create_loader(
        paths, image_size=image_size, batch_size=batch_size, train=False, augment=augment
    )
    probs: np.ndarray | None = None
    for images, idx in loader:
        batch_probs = torch.softmax(model(images).float(), dim=1).cpu().numpy()  # (B, C)
        if probs is None:
            probs = np.empty((len(paths), batch_probs.shape[1]), dtype=np.float32)
        probs[idx.numpy()] = batch_probs
    assert probs is not None, "create_loader refuses an empty pool"
    return probs


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


def pseudo_label_table(pool: pd.DataFrame, probs: np.ndarray, teacher_gen: int) -> pd.DataFrame:
    """The round's table: the contract columns first, then the pool's metadata columns
    (and `true_label` where known, for reports)."""
    summary = summarize_probs(probs)
    table = pd.DataFrame(
        {
            "item_id": pool["item_id"].to_numpy(),
            "path": pool["path"].to_numpy(),
            "teacher_gen": np.full(len(pool), teacher_gen, dtype=np.int64),
            **summary,
            "probs": list(probs.astype(np.float64)),
        }
    )
    extra = [c for c in pool.columns if c not in table.columns and c != "split"]
    return pd.concat([table, pool[extra].reset_index(drop=True)], axis=1)


def predict_split(
    model: nn.Module, dataset: Dataset, rows: pd.DataFrame, params: Params
) -> np.ndarray:
    """Probabilities (N, C) for manifest rows of `dataset`."""
    return predict_probs(
        model,
        dataset.resolve(rows["path"]),
        image_size=params.data.image_size,
        batch_size=params.infer.batch_size,
        augment=params.augment,
        device=resolve_device(params.augment.device),
    )


def infer_pool(model: nn.Module, dataset: Dataset, params: Params, teacher_gen: int) -> pd.DataFrame:
    """The teacher's unnoised predictions over the unlabeled pool."""
    pool = dataset.unlabeled()
    return pseudo_label_table(pool, predict_split(model, dataset, pool, params), teacher_gen)
