"""Which generations a run covers: checked before Prefect starts, and again by the flow itself."""

from __future__ import annotations

from selftrain.config import Params
from selftrain.errors import ConfigError


def last_generation(params: Params, generations: int | None) -> int:
    """The last generation to run: `generations`, or every generation in params.yaml."""
    last = params.num_generations if generations is None else generations
    if not 0 <= last <= params.num_generations:
        raise ConfigError(f"generations={last}: params.yaml defines generations 1..{params.num_generations}")
    return last
