"""The raw logits of every evaluated generation of a finished multiclass project, on chosen
splits: what the calibration benchmarks score temperatures on (`calibration_bounds`,
`temperature_small_val`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import numpy as np

from selftrain.config import load_params
from selftrain.data import load_dataset
from selftrain.models import bare_network, load_model
from selftrain.prediction import predict_split


@dataclass(frozen=True)
class GenerationLogits:
    generation: int
    temperature: float  # the one the model was saved with
    logits: dict[str, np.ndarray]  # split -> (N, C), before the temperature


def project_logits(
    project: Path, splits: tuple[str, ...], caller: str
) -> tuple[dict[str, np.ndarray], list[GenerationLogits]]:
    """Each split's labels (N,), and per generation of `params.evaluate_generations` its
    logits on each split in the same row order; SystemExit naming `caller` when the
    project is not multiclass."""
    params = load_params(project / "params.yaml")
    if params.task != "multiclass":
        raise SystemExit(f"{caller}: multiclass projects only (a softmax temperature)")
    dataset = load_dataset(project / "data/prepared/manifest.parquet")
    rows = {split: dataset.rows(split) for split in splits}
    labels = {split: rows[split]["label"].to_numpy(np.int64) for split in splits}
    generations = []
    for gen in params.evaluate_generations:
        model, _ = load_model(project / f"models/gen{gen}")
        net, fitted = bare_network(model)
        logits = {split: predict_split(net, dataset, rows[split], params, logits=True) for split in splits}
        generations.append(GenerationLogits(gen, fitted, logits))
    return labels, generations
