"""The generation gate: does student k beat its teacher on the val split?

Pure functions over each generation's val accuracy, so the flow (which stops
the loop) and the `select_best` stage (which names the best model) agree.
Test metrics are never used: choosing on test would leak it into the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from selftrain.errors import DataError
from selftrain.paths import ProjectPaths


@dataclass(frozen=True)
class GateDecision:
    best_generation: int
    stop: bool
    reason: str | None


def val_accuracy(paths: ProjectPaths, gen: int) -> float:
    path = paths.metrics(gen)
    try:
        metrics = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no metrics for generation {gen}; run evaluate@{gen}") from None
    if "val" not in metrics:
        raise DataError(f"{path}: no val metrics (data.val_fraction is 0); the gate needs a val split")
    return float(metrics["val"]["accuracy"])


# Accuracies are shares of the val items; this absorbs float error in "within one item".
_EPSILON = 1e-9


def val_size(paths: ProjectPaths, gen: int) -> int | None:
    """How many val items generation `gen`'s val accuracy was measured on (None: not recorded)."""
    size = json.loads(paths.metrics(gen).read_text()).get("val_size")
    return int(size) if size else None


def tie_tolerance(size: int | None) -> float:
    """Val accuracies closer than this are a tie: one val item (1 / val size); 0 when the size
    is unknown (metrics written before it was recorded)."""
    return 1.0 / size if size else 0.0


def best_index(val_accuracies: list[float], tolerance: float = 0.0) -> int:
    """The latest generation whose val accuracy is within `tolerance` of the highest.

    On a small val split one item is several points of accuracy, so a gap of one item is
    noise; the later generation has learned from more rounds of pseudo-labels, and the
    loop measured (issue 15) that the earliest-on-ties choice picked a generation below
    the best by test. Exact ties (tolerance 0) go to the later generation too.
    """
    top = max(val_accuracies)
    return max(i for i, a in enumerate(val_accuracies) if a >= top - tolerance - _EPSILON)


def decide(
    val_accuracies: list[float], min_gain: float, patience: int, tolerance: float = 0.0
) -> GateDecision:
    """Gate after the last generation in `val_accuracies` (index = generation, 0 = teacher).

    A generation is a gain when it beats its own teacher by more than `min_gain`;
    the loop stops after `patience` non-gains in a row. The best is `best_index`'s,
    with `tolerance` (`tie_tolerance` of the val size) as select_best uses it.
    """
    if not val_accuracies:
        raise ValueError("decide needs at least the teacher's val accuracy")
    best = best_index(val_accuracies, tolerance)
    misses = 0
    for gen in range(1, len(val_accuracies)):
        gain = val_accuracies[gen] - val_accuracies[gen - 1]
        misses = 0 if gain > min_gain else misses + 1
    last = len(val_accuracies) - 1
    if last >= 1 and misses >= patience:
        gain = val_accuracies[last] - val_accuracies[last - 1]
        reason = (
            f"generation {last} gained {gain:+.4f} val accuracy over its teacher "
            f"(min_gain {min_gain}); {misses} generation(s) without gain reached patience {patience}; "
            f"best is generation {best}"
        )
        return GateDecision(best_generation=best, stop=True, reason=reason)
    return GateDecision(best_generation=best, stop=False, reason=None)


def best_pointer(paths: ProjectPaths, generations: list[int]) -> dict:
    """What `models/best.json` says: the generation with the best val accuracy so far,
    near-ties (within one val item, `tie_tolerance`) going to the later generation."""
    accuracies = [val_accuracy(paths, g) for g in generations]
    sizes = [val_size(paths, g) for g in generations]
    # Every generation is measured on the same val split; the smallest size is the safe one.
    size = min((s for s in sizes if s), default=None)
    tolerance = tie_tolerance(size)
    best = best_index(accuracies, tolerance)
    gen = generations[best]
    metrics = json.loads(paths.metrics(gen).read_text())
    return {
        "generation": gen,
        "model_dir": str(Path("models") / f"gen{gen}"),
        "val_accuracy": accuracies[best],
        "val_size": size,
        "tie_tolerance": tolerance,
        "test_accuracy": metrics["accuracy"],
        "candidates": {str(g): a for g, a in zip(generations, accuracies)},
    }


def summary_metrics(paths: ProjectPaths, generations: list[int], pointer: dict) -> dict:
    """`metrics/summary.json`: the few numbers `dvc exp show` lists per run (its columns
    would otherwise be every per-class metric of every generation)."""
    return {
        "best_generation": pointer["generation"],
        "best_val_accuracy": pointer["val_accuracy"],
        "best_test_accuracy": pointer["test_accuracy"],
        "test_accuracy": {str(g): json.loads(paths.metrics(g).read_text())["accuracy"] for g in generations},
    }
