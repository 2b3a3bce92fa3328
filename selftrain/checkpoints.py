"""Per-epoch training checkpoints: a run's fingerprint, and saving and resuming its state.

A checkpoint holds the model, optimizer, scheduler, weight average, epoch records and
every rank's torch RNG state, under the fingerprint of the run that wrote it; only
the same run (`run_fingerprint`) resumes from it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import nn

from selftrain.atomic import atomic_path
from selftrain.distributed import World, gather_objects
from selftrain.models import count_parameters

if TYPE_CHECKING:  # selftrain.train imports this module
    from selftrain.train import FitOptions, TrainSet


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _state_digest(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def run_fingerprint(
    model: nn.Module,
    labeled: TrainSet,
    pseudo: TrainSet | None,
    unlabeled: Sequence[str] | None,
    options: FitOptions,
    label: str,
    world: World,
) -> str:
    """Identity of a training run: a checkpoint resumes only the run that wrote it.

    Hashes the rows themselves (paths, targets, weights), so two pseudo-label sets of
    one size and one target sum never collide, and the starting weights, so a run that
    starts from other weights (a weights file, the teacher's) never resumes this one.
    """
    parts = [label, repr(options), str(count_parameters(model)), _state_digest(model)]
    if world.size > 1:
        parts.append(f"world={world.size}")
    for train_set in (labeled, pseudo):
        if train_set is not None:
            parts += [
                hashlib.sha256("\n".join(map(str, train_set.paths)).encode()).hexdigest(),
                _digest(np.asarray(train_set.targets, dtype=np.float32)),
                _digest(np.asarray(train_set.weights, dtype=np.float32)),
            ]
    if unlabeled:
        parts.append(hashlib.sha256("\n".join(map(str, unlabeled)).encode()).hexdigest())
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def save_checkpoint(
    path: Path, fingerprint: str, model, optimizer, scheduler, average, history: list[dict], world: World
) -> None:
    # Every rank's RNG (dropout masks differ by rank); collective, so all ranks call it.
    rng_states = gather_objects(torch.get_rng_state(), world)
    if not world.is_main:
        return
    state = {
        "fingerprint": fingerprint,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": history,
        "torch_rng": rng_states[0],
    }
    if average is not None:
        state["weight_average"] = average.state_dict()
    if world.size > 1:
        state["torch_rng_ranks"] = rng_states
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path | None, fingerprint: str, model, optimizer, scheduler, average, world: World):
    """(history, this rank's torch RNG state) of a matching checkpoint, or None to start fresh."""
    if path is None or not Path(path).exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a checkpoint we cannot read is as good as none: start over
        return None
    if state.get("fingerprint") != fingerprint:
        return None
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if average is not None:
        average.load_state_dict(state["weight_average"])
    return list(state["history"]), state.get("torch_rng_ranks", [state["torch_rng"]])[world.rank]
