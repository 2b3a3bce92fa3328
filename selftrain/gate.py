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


def best_index(val_accuracies: list[float]) -> int:
    """Highest val accuracy; the earliest on ties (a larger model must earn its place)."""
    return max(range(len(val_accuracies)), key=lambda i: (val_accuracies[i], -i))


def decide(val_accuracies: list[float], min_gain: float, patience: int) -> GateDecision:
    """Gate after the last generation in `val_accuracies` (index = generation, 0 = teacher).

    A generation is a gain when it beats its own teacher by more than `min_gain`;
    the loop stops after `patience` non-gains in a row.
    """
    if not val_accuracies:
        raise ValueError("decide needs at least the teacher's val accuracy")
    best = best_index(val_accuracies)
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
    """What `models/best.json` says: the generation with the best val accuracy so far."""
    accuracies = [val_accuracy(paths, g) for g in generations]
    best = best_index(accuracies)
    gen = generations[best]
    metrics = json.loads(paths.metrics(gen).read_text())
    return {
        "generation": gen,
        "model_dir": str(Path("models") / f"gen{gen}"),
        "val_accuracy": accuracies[best],
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
