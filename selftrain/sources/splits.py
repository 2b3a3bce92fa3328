"""Split allocation: which labeled rows without a split of their own become val and test."""

from __future__ import annotations

import numpy as np

from selftrain.config import DataConfig


def split_off(splits: np.ndarray, labels: np.ndarray, config: DataConfig, seed: int) -> None:
    """Assign labeled rows without a split ("") to test, val or labeled, in place.

    Test takes `test_fraction` of the unassigned rows, then val takes `val_fraction`
    of what is left (as for digits, val is a share of the non-test pool), each only
    when no row already has that split. Stratified by class, at least one row when
    there is any to spare, and every class keeps one labeled row. Seeded.
    """
    pool = splits == ""
    for split, fraction, seed_offset in (("test", config.test_fraction, 0), ("val", config.val_fraction, 1)):
        if (splits == split).any() or not pool.any():
            continue
        rng = np.random.default_rng([seed, seed_offset])
        classes = np.unique(labels[pool])
        counts = np.array([(pool & (labels == c)).sum() for c in classes])
        for c, take in zip(classes, _allocate(counts, fraction)):
            if take:
                members = np.flatnonzero(pool & (labels == c))
                chosen = rng.choice(members, size=take, replace=False)
                splits[chosen] = split
                pool[chosen] = False
    splits[pool] = "labeled"


def _allocate(counts: np.ndarray, fraction: float) -> np.ndarray:
    """Rows to take from each class: `fraction` of the total (at least 1), shared by
    largest remainder, never a class's last row."""
    caps = np.maximum(counts - 1, 0)
    total = min(max(1, int(np.floor(fraction * counts.sum() + 0.5))), int(caps.sum()))
    quotas = fraction * counts
    take = np.minimum(np.floor(quotas).astype(np.int64), caps)
    # Largest remainder first; ties go to the earlier class.
    order = sorted(range(len(counts)), key=lambda c: (-(quotas[c] - take[c]), c))
    while take.sum() < total:
        for c in order:
            if take.sum() < total and take[c] < caps[c]:
                take[c] += 1
    return take
