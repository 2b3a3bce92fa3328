"""Training: the soft-target loss, one epoch, and `fit` for teacher and student.

The teacher learns from labeled rows only. A student's batch is a labeled part
and a pseudo-labelled part (`batch_ratio` times larger, as in Noisy Student),
and it learns with noise: DALI input noise, dropout and stochastic depth in the
model. An epoch is one pass over the pseudo-labelled rows; the labeled rows
cycle beside them.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from selftrain.atomic import atomic_path
from selftrain.augment import ImageLoader, create_loader, resolve_device
from selftrain.config import AugmentConfig, OptimConfig, Params
from selftrain.data import Dataset
from selftrain.distributed import (
    SINGLE_PROCESS,
    World,
    all_ranks_true,
    data_parallel,
    gather_objects,
    min_over_ranks,
    rank_batch_size,
    sum_over_ranks,
)
from selftrain.errors import TrainingError
from selftrain.models import ModelHeader, ResNetS3, count_parameters, create_model, header_for


@dataclass(frozen=True)
class TrainSet:
    """Images and what to learn from them: `targets` (N, C) probabilities, `weights` (N,)."""

    paths: Sequence[str]
    targets: np.ndarray
    weights: np.ndarray

    def __post_init__(self):
        n = len(self.paths)
        if self.targets.shape[0] != n or self.weights.shape[0] != n:
            raise ValueError(
                f"TrainSet: {n} paths, {self.targets.shape[0]} targets, {self.weights.shape[0]} weights"
            )

    @classmethod
    def from_labels(cls, paths: Sequence[str], labels: np.ndarray, num_classes: int) -> "TrainSet":
        targets = np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
        return cls(list(paths), targets, np.ones(len(paths), dtype=np.float32))


@dataclass(frozen=True)
class FitOptions:
    epochs: int
    lr: float
    batch_size: int
    image_size: int
    seed: int
    optim: OptimConfig
    augment: AugmentConfig
    # Input noise (RandAugment, translation) on the training images.
    input_noise: bool = True
    # Pseudo-labelled rows per labeled row in a student batch.
    batch_ratio: float = 1.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def torch_device(dali_device: str) -> torch.device:
    return torch.device("cuda") if dali_device == "gpu" else torch.device("cpu")


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Weighted cross-entropy against soft targets.

    logits (B, C), targets (B, C) rows summing to 1, weights (B,) -> scalar.
    With one-hot targets this is the ordinary cross-entropy.
    """
    per_row = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1)  # (B,)
    return (weights * per_row).sum() / weights.sum().clamp_min(1e-12)


def _forever(loader: ImageLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from loader


def fit(
    model: nn.Module,
    labeled: TrainSet,
    pseudo: TrainSet | None,
    options: FitOptions,
    device: str,
    label: str,
    on_epoch: Callable[[dict], None] | None = None,
    checkpoint: Path | None = None,
    world: World = SINGLE_PROCESS,
) -> list[dict]:
    """Train `model` in place; return one record per epoch (loss, accuracy on its batches).

    Args:
        labeled: rows with ground-truth labels (one-hot targets).
        pseudo: refined pseudo-labelled rows, or None for the teacher.
        device: the DALI backend, "cpu" or "gpu"; the model follows it.
        label: names the run in errors, e.g. "train_student@2".
        checkpoint: file for per-epoch state. When it holds the state of an
            interrupted run of the same training, training resumes after its last
            epoch and ends exactly as an uninterrupted run would. Removed on success.
            Only rank 0 writes it.
        world: this process's rank among DDP processes. Each rank reads its own shard
            of the data with 1/world.size of the batch, so the global batch is the same
            as with one process; records are over all ranks.
    """
    # Rank 0 keeps the single-process seed; other ranks draw different dropout masks.
    seed_everything(options.seed + world.rank)
    torch_dev = torch_device(device)
    model.to(torch_dev)
    pseudo_batch = max(1, round(options.batch_size * options.batch_ratio)) if pseudo else 0

    def loader(train_set: TrainSet, batch_size: int, seed: int) -> ImageLoader:
        return create_loader(
            train_set.paths,
            image_size=options.image_size,
            batch_size=batch_size,
            train=True,
            augment=options.augment,
            noise=options.input_noise,
            seed=seed,
            shard_id=world.rank,
            num_shards=world.size,
        )

    labeled_loader = loader(labeled, rank_batch_size(options.batch_size, world), options.seed)
    pseudo_loader = (
        loader(pseudo, rank_batch_size(pseudo_batch, world), options.seed + 1) if pseudo else None
    )
    # Uneven shards give some ranks one batch more; every rank must take the same
    # number of steps (each step all-reduces gradients), so all take the fewest and
    # the longer shards leave their last batch of the epoch unused.
    steps_per_epoch = min_over_ranks(len(pseudo_loader) if pseudo_loader else len(labeled_loader), world)
    total_steps = steps_per_epoch * options.epochs

    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=options.lr,
        momentum=options.optim.momentum,
        weight_decay=options.optim.weight_decay,
        nesterov=options.optim.momentum > 0,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    to_dev = lambda array: torch.as_tensor(array).to(torch_dev)  # noqa: E731
    labeled_targets, labeled_weights = to_dev(labeled.targets), to_dev(labeled.weights)
    if pseudo:
        pseudo_targets, pseudo_weights = to_dev(pseudo.targets), to_dev(pseudo.weights)

    fingerprint = _fingerprint(model, labeled, pseudo, options, label, world)
    history: list[dict] = []
    resumed = _load_checkpoint(checkpoint, fingerprint, model, optimizer, scheduler, world)
    if resumed:
        history, rng_state = resumed
    # After loading: DDP starts every rank from rank 0's weights.
    net = data_parallel(model, world, torch_dev)
    labeled_stream = _forever(labeled_loader)
    # Replay the finished epochs' data order without computing, so that the DALI
    # readers and augmentation RNGs stand where the interrupted run left them.
    for _ in history:
        for _batch in _epoch_batches(pseudo_loader, steps_per_epoch):
            next(labeled_stream)
    if resumed:
        torch.set_rng_state(rng_state)
    for epoch in range(len(history) + 1, options.epochs + 1):
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for batch in _epoch_batches(pseudo_loader, steps_per_epoch):
            images, idx = next(labeled_stream)
            idx = idx.to(torch_dev)
            targets, weights = labeled_targets[idx], labeled_weights[idx]
            if pseudo_loader:
                pseudo_images, pseudo_idx = batch
                pseudo_idx = pseudo_idx.to(torch_dev)
                images = torch.cat([images, pseudo_images])
                targets = torch.cat([targets, pseudo_targets[pseudo_idx]])
                weights = torch.cat([weights, pseudo_weights[pseudo_idx]])
            logits = net(images)
            loss = soft_cross_entropy(logits, targets, weights)
            finite = bool(torch.isfinite(loss))
            if world.size > 1:
                finite = all_ranks_true(finite, world)
            if not finite:
                raise TrainingError(
                    f"{label}: loss became {loss.item()} at epoch {epoch}; "
                    "lower the learning rate or check the targets"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(images)
            correct += (logits.argmax(1) == targets.argmax(1)).sum().item()
            seen += len(images)
        loss_sum, correct, seen = sum_over_ranks([loss_sum, correct, seen], world)
        record = {"epoch": epoch, "loss": loss_sum / seen, "train_accuracy": correct / seen}
        history.append(record)
        if checkpoint is not None:
            _save_checkpoint(checkpoint, fingerprint, model, optimizer, scheduler, history, world)
        if on_epoch:
            on_epoch(record)
    return history


def _epoch_batches(pseudo_loader: ImageLoader | None, steps: int) -> Iterator:
    """One epoch's `steps` pseudo-labelled batches (None each for the teacher).

    Stops after `steps` without reading on; the loader finishes an epoch left open
    before it starts the next.
    """
    if pseudo_loader is None:
        return itertools.repeat(None, steps)
    return itertools.islice(pseudo_loader, steps)


def _fingerprint(
    model: nn.Module, labeled: TrainSet, pseudo: TrainSet | None, options: FitOptions, label: str, world: World
) -> str:
    """Identity of a training run: a checkpoint resumes only the run that wrote it."""
    parts = [label, repr(options), str(count_parameters(model))]
    if world.size > 1:
        parts.append(f"world={world.size}")
    for train_set in (labeled, pseudo):
        if train_set is not None:
            parts += [str(len(train_set.paths)), str(float(train_set.targets.sum())), str(float(train_set.weights.sum()))]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _save_checkpoint(
    path: Path, fingerprint: str, model, optimizer, scheduler, history: list[dict], world: World
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
    if world.size > 1:
        state["torch_rng_ranks"] = rng_states
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path: Path | None, fingerprint: str, model, optimizer, scheduler, world: World):
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
    return list(state["history"]), state.get("torch_rng_ranks", [state["torch_rng"]])[world.rank]


def labeled_train_set(dataset: Dataset) -> TrainSet:
    rows = dataset.labeled()
    return TrainSet.from_labels(dataset.resolve(rows["path"]), rows["label"].to_numpy(np.int64), dataset.num_classes)


def pseudo_train_set(dataset: Dataset, refined: pd.DataFrame, gen: int) -> TrainSet:
    """Kept rows of a refined round, each repeated `copies` times (class balancing)."""
    kept = refined[refined["kept"]]
    if kept.empty or int(kept["copies"].sum()) == 0:
        raise TrainingError(
            f"train_student@{gen}: refine@{gen} kept no pseudo-labels, so the student would "
            "learn from labeled rows only; lower refine.threshold or relax the rules"
        )
    repeat = kept["copies"].to_numpy(np.int64)
    paths = np.repeat(np.asarray(dataset.resolve(kept["path"]), dtype=object), repeat)
    targets = np.repeat(np.stack(kept["target"].to_numpy()).astype(np.float32), repeat, axis=0)
    weights = np.repeat(kept["weight"].to_numpy(np.float32), repeat)
    return TrainSet(list(paths), targets, weights)


def train_teacher(
    dataset: Dataset,
    params: Params,
    on_epoch=None,
    checkpoint: Path | None = None,
    world: World = SINGLE_PROCESS,
) -> tuple[ResNetS3, ModelHeader, list[dict]]:
    cfg = params.teacher
    options = FitOptions(
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        image_size=params.data.image_size,
        seed=params.seed,
        optim=params.optim,
        augment=params.augment,
        input_noise=cfg.input_noise,
    )
    # Seeded initial weights: a rerun of the stage (another process) trains the same model.
    seed_everything(options.seed)
    model = create_model(cfg.width, cfg.depth, cfg.dropout, cfg.drop_path, dataset.num_classes)
    history = fit(
        model,
        labeled_train_set(dataset),
        None,
        options,
        resolve_device(params.augment.device),
        "train_teacher",
        on_epoch,
        checkpoint,
        world,
    )
    return model, header_for(model, params, dataset.class_names, 0), history


def train_student(
    dataset: Dataset,
    refined: pd.DataFrame,
    params: Params,
    gen: int,
    on_epoch=None,
    checkpoint: Path | None = None,
    world: World = SINGLE_PROCESS,
) -> tuple[ResNetS3, ModelHeader, list[dict]]:
    cfg = params.student
    width, depth = params.model_size(gen)
    generation = params.generations[gen]
    options = FitOptions(
        epochs=generation.epochs or cfg.epochs,
        lr=generation.lr or cfg.lr,
        batch_size=cfg.batch_size,
        image_size=params.data.image_size,
        seed=params.seed + gen,
        optim=params.optim,
        augment=params.augment,
        input_noise=cfg.input_noise,
        batch_ratio=cfg.batch_ratio,
    )
    seed_everything(options.seed)
    model = create_model(width, depth, cfg.dropout, cfg.drop_path, dataset.num_classes)
    history = fit(
        model,
        labeled_train_set(dataset),
        pseudo_train_set(dataset, refined, gen),
        options,
        resolve_device(params.augment.device),
        f"train_student@{gen}",
        on_epoch,
        checkpoint,
        world,
    )
    return model, header_for(model, params, dataset.class_names, gen), history
