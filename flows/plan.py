"""Which generations a run covers, and whether dvc.yaml's per-generation deps are
params.yaml's: checked before Prefect starts, and again by the flow itself."""

from __future__ import annotations

from pathlib import Path

from selftrain.config import Params
from selftrain.errors import ConfigError
from selftrain.generation_deps import check_generation_deps


def last_generation(params: Params, generations: int | None) -> int:
    """The last generation to run: `generations`, or every generation in params.yaml."""
    last = params.num_generations if generations is None else generations
    if not 0 <= last <= params.num_generations:
        raise ConfigError(f"generations={last}: params.yaml defines generations 1..{params.num_generations}")
    return last


def check_plan(project_dir: str | Path, params: Params, generations: int | None) -> int:
    """The last generation to run, once dvc.yaml's select_best and report deps are known
    to be params.yaml's generations (else DVC fails only after the last generation)."""
    last = last_generation(params, generations)
    check_generation_deps(Path(project_dir) / "dvc.yaml", params.evaluate_generations)
    return last
