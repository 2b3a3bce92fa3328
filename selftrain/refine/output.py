"""What refine writes: training targets from the final labels (or label sets) and the refined table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from selftrain.refine.config import RefineConfig
from selftrain.refine.state import RowState


def sharpen(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T) per row of (N, C) `probs`; T < 1 sharpens, T > 1 flattens."""
    with np.errstate(divide="ignore"):
        logits = np.log(probs) / temperature
    logits = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def training_targets(
    config: RefineConfig, probs: np.ndarray, pred: np.ndarray, state: RowState, hard: np.ndarray | None = None
) -> list[list[float] | None]:
    """(N,) training targets, each a list of C floats; None for dropped rows.

    `hard` (N,) bool marks rows whose label is not a guess (a person's correction): one-hot always.
    """
    n, c = probs.shape
    targets = sharpen(probs, config.temperature) if config.soft and n else np.zeros((n, c))
    # Hard targets everywhere, or where a rule moved the row away from the teacher's pick.
    one_hot = np.ones(n, dtype=bool) if not config.soft else state.labels != pred
    if hard is not None:
        one_hot = one_hot | hard
    targets[one_hot] = np.eye(c)[state.labels[one_hot]]
    rows = targets.tolist()
    return [row if keep else None for row, keep in zip(rows, state.kept.tolist())]


def object_series(values: list, index: pd.Index) -> pd.Series:
    """A Series of `values` as Python objects (lists, None) on `index`."""
    array = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        array[i] = v
    return pd.Series(array, index=index, dtype=object)


def refined_table(
    pseudo_labels: pd.DataFrame, base: pd.DataFrame, has_previous: bool, state: RowState, targets: list
) -> pd.DataFrame:
    """The input table (same rows, index and columns) plus derived and result columns."""
    table = pseudo_labels.copy()
    index = table.index
    derived = ["second_pred", "second_confidence"] + (["prev_pred", "prev_confidence"] if has_previous else [])
    for name in derived:
        table[name] = base[name].set_axis(index)
    label = pd.array(state.labels, dtype="Int64")
    label[~state.kept] = pd.NA
    table["label"] = pd.Series(label, index=index)
    table["target"] = object_series(targets, index)
    table["weight"] = pd.Series(np.where(state.kept, state.weight, 0.0), index=index)
    table["kept"] = pd.Series(state.kept.copy(), index=index)
    table["copies"] = pd.Series(state.copies.copy(), index=index)
    table["rules"] = object_series([list(r) for r in state.rules], index)
    table["dropped_by"] = object_series(list(state.dropped_by), index)
    return table



def sharpen_binary(probs: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit(p) / T) elementwise for (N, C) sigmoid `probs`: each class's own
    two-way softmax(log(p) / T), as `sharpen` is for one softmax over the classes."""
    p = np.clip(probs, 1e-12, 1.0 - 1e-12)
    return 1.0 / (1.0 + np.exp(-(np.log(p) - np.log1p(-p)) / temperature))


def label_set_targets(
    config: RefineConfig,
    probs: np.ndarray,
    predicted: np.ndarray,
    sets: np.ndarray,
    kept: np.ndarray,
    hard: np.ndarray | None = None,
) -> list[list[float] | None]:
    """(N,) multi-label training targets, each a list of C floats; None for dropped images.

    Hard: the 0/1 of each final set (`sets`, (N, C) bool). Soft (``refine.soft``): the
    sharpened sigmoid probabilities, except where the final set differs from the teacher's
    `predicted` set (a rule added or removed the class): 0/1 there, as a relabelled row's
    target is one-hot in multiclass. `hard` (N,) bool marks images whose set is not a guess
    (a person's correction): 0/1 always.
    """
    final = sets.astype(np.float64)
    if config.soft:
        targets = sharpen_binary(probs, config.temperature) if len(probs) else final.copy()
        changed = sets != predicted
        if hard is not None:
            changed |= hard[:, None]
        targets[changed] = final[changed]
    else:
        targets = final
    return [row if keep else None for row, keep in zip(targets.tolist(), kept.tolist())]
