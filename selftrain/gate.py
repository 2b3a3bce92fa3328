"""The generation gate: does student k beat its teacher on the val split?

Pure functions over each generation's val score, so the flow (which stops
the loop) and the `select_best` stage (which names the best model) agree.
The score is val accuracy in a multiclass run and val mAP (``val_map``) in a
multilabel one; each metrics file says its task (`selection_metric`).
Test metrics are never used: choosing on test would leak it into the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from selftrain.errors import DataError
from selftrain.paths import ProjectPaths

MULTILABEL = "multilabel"


@dataclass(frozen=True)
class GateDecision:
    best_generation: int
    stop: bool
    reason: str | None


def read_metrics(paths: ProjectPaths, gen: int) -> dict:
    path = paths.metrics(gen)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no metrics for generation {gen}; run evaluate@{gen}") from None


def selection_metric(metrics: dict) -> str:
    """The key generations are chosen by: ``val_map`` for a multilabel metrics file, else
    ``val_accuracy`` (the multiclass ``val.accuracy``)."""
    return "val_map" if metrics.get("task") == MULTILABEL else "val_accuracy"


def val_score(paths: ProjectPaths, gen: int) -> float:
    """Generation `gen`'s val score: val mAP in a multilabel run, val accuracy otherwise."""
    path = paths.metrics(gen)
    metrics = read_metrics(paths, gen)
    if "val" not in metrics:
        raise DataError(f"{path}: no val metrics (data.val_fraction is 0); the gate needs a val split")
    if selection_metric(metrics) == "val_map":
        if metrics.get("val_map") is None:
            raise DataError(f"{path}: val_map is null (no val image carries a label); the gate needs one")
        return float(metrics["val_map"])
    return float(metrics["val"]["accuracy"])


def metric_name(paths: ProjectPaths, gen: int) -> str:
    """How messages name generation `gen`'s val score: "val mAP" or "val accuracy"."""
    return "val mAP" if selection_metric(read_metrics(paths, gen)) == "val_map" else "val accuracy"


# Accuracies are shares of the val items; this absorbs float error in "within one item".
_EPSILON = 1e-9


def val_size(paths: ProjectPaths, gen: int) -> int | None:
    """How many val items generation `gen`'s val accuracy was measured on (None: not recorded)."""
    size = json.loads(paths.metrics(gen).read_text()).get("val_size")
    return int(size) if size else None


def tie_tolerance(size: int | None, metric: str = "val_accuracy") -> float:
    """Val accuracies closer than this are a tie: one val item (1 / val size); 0 when the size
    is unknown (metrics written before it was recorded). Val mAP (`metric` ``val_map``) has
    no such step (a mean of per-class APs, not a share of items): only exact ties there."""
    if metric == "val_map":
        return 0.0
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
    val_accuracies: list[float],
    min_gain: float,
    patience: int,
    tolerance: float = 0.0,
    metric: str = "val accuracy",
) -> GateDecision:
    """Gate after the last generation in `val_accuracies` (index = generation, 0 = teacher):
    val accuracy, or whatever val score `metric` names (val mAP in a multilabel run).

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
            f"generation {last} gained {gain:+.4f} {metric} over its teacher "
            f"(min_gain {min_gain}); {misses} generation(s) without gain reached patience {patience}; "
            f"best is generation {best}"
        )
        return GateDecision(best_generation=best, stop=True, reason=reason)
    return GateDecision(best_generation=best, stop=False, reason=None)


def best_pointer(paths: ProjectPaths, generations: list[int]) -> dict:
    """What `models/best.json` says: the generation with the best val score so far,
    ties (in multiclass within one val item, `tie_tolerance`) going to the later generation.

    Multiclass: ``val_accuracy`` and ``test_accuracy`` of the best. Multilabel (``metric``
    ``val_map``): ``val_map``, ``test_map`` and ``test_micro_f1``.
    """
    metrics = [read_metrics(paths, g) for g in generations]
    metric = _one_metric(paths, generations, metrics)
    scores = [val_score(paths, g) for g in generations]
    sizes = [val_size(paths, g) for g in generations]
    # Every generation is measured on the same val split; the smallest size is the safe one.
    size = min((s for s in sizes if s), default=None)
    tolerance = tie_tolerance(size, metric)
    best = best_index(scores, tolerance)
    gen = generations[best]
    chosen = metrics[best]
    pointer = {"generation": gen, "model_dir": str(Path("models") / f"gen{gen}")}
    if metric == "val_map":
        pointer.update(task=MULTILABEL, metric=metric, val_map=scores[best])
    else:
        pointer["val_accuracy"] = scores[best]
    pointer.update(val_size=size, tie_tolerance=tolerance)
    if metric == "val_map":
        pointer.update(test_map=chosen["map"], test_micro_f1=chosen["micro_f1"])
    else:
        pointer["test_accuracy"] = chosen["accuracy"]
    pointer["candidates"] = {str(g): a for g, a in zip(generations, scores)}
    return pointer


def _one_metric(paths: ProjectPaths, generations: list[int], metrics: list[dict]) -> str:
    """The selection metric all `generations` share; metrics files of both tasks are named."""
    chosen = [selection_metric(m) for m in metrics]
    if len(set(chosen)) > 1:
        files = {metric: str(paths.metrics(g)) for g, metric in zip(generations, chosen)}
        raise DataError(
            f"metrics of both tasks: {files['val_map']} is multilabel, {files['val_accuracy']} multiclass; "
            "evaluate every generation of the run again"
        )
    return chosen[0]


def summary_metrics(paths: ProjectPaths, generations: list[int], pointer: dict) -> dict:
    """`metrics/summary.json`: the few numbers `dvc exp show` lists per run (its columns
    would otherwise be every per-class metric of every generation). A multilabel run lists
    mAP and micro-F1 where a multiclass one lists accuracy."""
    metrics = {str(g): read_metrics(paths, g) for g in generations}
    if pointer.get("metric") == "val_map":
        return {
            "best_generation": pointer["generation"],
            "best_val_map": pointer["val_map"],
            "best_test_map": pointer["test_map"],
            "test_map": {g: m["map"] for g, m in metrics.items()},
            "test_micro_f1": {g: m["micro_f1"] for g, m in metrics.items()},
        }
    return {
        "best_generation": pointer["generation"],
        "best_val_accuracy": pointer["val_accuracy"],
        "best_test_accuracy": pointer["test_accuracy"],
        "test_accuracy": {g: m["accuracy"] for g, m in metrics.items()},
    }
