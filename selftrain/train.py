"""Training: `fit` for teacher and student, with per-epoch checkpoints for exact resume
(`selftrain.checkpoints`).

The teacher learns from labeled rows (and, by its `unlabeled` setting, from the
unlabeled pool through an auxiliary loss). A student's batch is a labeled part and
a pseudo-labelled part (`batch_ratio` times larger, as in Noisy Student), and it
learns with noise: DALI input noise, dropout and stochastic depth in the model.
An epoch is one pass over the pseudo-labelled rows, else over the unlabeled pool
when an unlabeled loss is on, else over the labeled rows; the other streams cycle.

`FitOptions.task` picks the output: one softmax over the classes (multiclass), or one
sigmoid per class with binary cross-entropy (multilabel, `selftrain.losses`).
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from selftrain.augment import ImageLoader, create_loader, resolve_geometry, torch_device, two_views
from selftrain.checkpoints import load_checkpoint, run_fingerprint, save_checkpoint
from selftrain.config import AugmentConfig, OptimConfig
from selftrain.distributed import (
    SINGLE_PROCESS,
    World,
    all_ranks_true,
    data_parallel,
    min_over_ranks,
    rank_batch_size,
    sum_over_ranks,
)
from selftrain.ema import WeightAverage
from selftrain.errors import TrainingError
from selftrain.losses import (
    WithRotationHead,
    binary_consistency_loss,
    consistency_loss,
    rampup_weight,
    rotate_batch,
    soft_binary_cross_entropy,
    soft_cross_entropy,
)
from selftrain.normalization import IMAGENET, Normalization
from selftrain.params_training import RESNET_S3

# params `task` values (`selftrain.params_schema.Task`).
TASKS = ("multiclass", "multilabel")


@dataclass(frozen=True)
class TrainSet:
    """Images and what to learn from them: `targets` (N, C), `weights` (N,).

    Multiclass: each target row is a distribution over the classes. Multilabel: each
    entry is its class's own probability of being present (0/1 for hard labels).
    """

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
class UnlabeledLoss:
    """The auxiliary loss on unlabeled images (`teacher.unlabeled`, `student.unlabeled`)."""

    kind: str = "none"  # none | rotation | consistency
    weight: float = 1.0
    # consistency: weak-view confidence needed for a row (multilabel: a row's class) to count.
    threshold: float = 0.95
    # Unlabeled images per labeled image in a batch.
    ratio: float = 3.0


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
    unlabeled: UnlabeledLoss = field(default_factory=UnlabeledLoss)
    # Per-step decay of the weight average that `fit` leaves in the model; 0 = off.
    ema_decay: float = 0.0
    # The pseudo-labelled rows' weight ramps linearly from 0 to 1 over these epochs.
    pseudo_rampup_epochs: int = 0
    # Per-channel input normalisation (`selftrain.data.input_normalization`).
    normalization: Normalization = IMAGENET
    # bf16 autocast of the forward pass (params train.amp, resolved for the device).
    amp: bool = False
    # NHWC weights and inputs (params train.channels_last, resolved for the device).
    channels_last: bool = False
    # The model's architecture: `augment.geometry: auto` frames its training images by it.
    arch: str = RESNET_S3
    # multiclass: softmax cross-entropy; multilabel: per-class sigmoid binary cross-entropy
    # (params `task`).
    task: str = "multiclass"

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"FitOptions.task: expected one of {list(TASKS)}, got {self.task!r}")

    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
    unlabeled: Sequence[str] | None = None,
) -> list[dict]:
    """Train `model` in place; return one record per epoch (loss, accuracy on its batches).

    The record's `train_accuracy` is the share of right decisions: per row, the argmax
    against the target's (multiclass); per (row, class), logit > 0 against target >= 0.5
    (multilabel: the same key, so progress lines and curves need no second name).

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
        unlabeled: image paths for `options.unlabeled` (required unless its kind is none).

    With `options.ema_decay` > 0 the model ends holding the weight average, not the
    last step's weights.
    """
    # Rank 0 keeps the single-process seed; other ranks draw different dropout masks.
    seed_everything(options.seed + world.rank)
    torch_dev = torch_device(device)
    model.to(torch_dev)
    if options.channels_last:
        model.to(memory_format=torch.channels_last)
    aux = options.unlabeled
    if aux.kind != "none" and not unlabeled:
        raise TrainingError(f"{label}: unlabeled loss {aux.kind!r} needs unlabeled images, got none")
    pseudo_batch = max(1, round(options.batch_size * options.batch_ratio)) if pseudo else 0
    unlabeled_batch = max(1, round(options.batch_size * aux.ratio))

    def loader(paths: Sequence[str], batch_size: int, seed: int, views=None) -> ImageLoader:
        return create_loader(
            paths,
            image_size=options.image_size,
            batch_size=rank_batch_size(batch_size, world),
            train=True,
            augment=options.augment,
            noise=options.input_noise,
            seed=seed,
            shard_id=world.rank,
            num_shards=world.size,
            views=views,
            normalization=options.normalization,
            geometry=resolve_geometry(options.augment.geometry, options.arch),
        )

    labeled_loader = loader(labeled.paths, options.batch_size, options.seed)
    pseudo_loader = loader(pseudo.paths, pseudo_batch, options.seed + 1) if pseudo else None
    # consistency: a weak and a strong view of each unlabeled image; rotation: one noised view.
    views = two_views(options.augment) if aux.kind == "consistency" else None
    unlabeled_loader = (
        loader(unlabeled, unlabeled_batch, options.seed + 2, views) if aux.kind != "none" else None
    )
    # What one epoch is a pass over; the other loaders cycle beside it.
    driver = pseudo_loader or unlabeled_loader or labeled_loader
    # Uneven shards give some ranks one batch more; every rank must take the same
    # number of steps (each step all-reduces gradients), so all take the fewest and
    # the longer shards leave their last batch of the epoch unused.
    steps_per_epoch = min_over_ranks(len(driver), world)
    total_steps = steps_per_epoch * options.epochs
    rampup_steps = options.pseudo_rampup_epochs * steps_per_epoch

    train_net: nn.Module = WithRotationHead(model).to(torch_dev) if aux.kind == "rotation" else model
    # Inputs follow the weights' layout; removed when fit returns.
    layout_hook = train_net.register_forward_pre_hook(_to_channels_last) if options.channels_last else None
    optimizer = torch.optim.SGD(
        train_net.parameters(),
        lr=options.lr,
        momentum=options.optim.momentum,
        weight_decay=options.optim.weight_decay,
        nesterov=options.optim.momentum > 0,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    )
    average = WeightAverage(model, options.ema_decay) if options.ema_decay > 0 else None
    to_dev = lambda array: torch.as_tensor(array).to(torch_dev)  # noqa: E731
    labeled_targets, labeled_weights = to_dev(labeled.targets), to_dev(labeled.weights)
    if pseudo:
        pseudo_targets, pseudo_weights = to_dev(pseudo.targets), to_dev(pseudo.weights)

    fingerprint = run_fingerprint(model, labeled, pseudo, unlabeled, options, label, world)
    history: list[dict] = []
    resumed = load_checkpoint(checkpoint, fingerprint, train_net, optimizer, scheduler, average, world)
    if resumed:
        history, rng_state = resumed
    # After loading: DDP starts every rank from rank 0's weights.
    net = data_parallel(train_net, world, torch_dev)
    # The loaders that do not drive the epoch cycle beside it.
    labeled_stream = None if labeled_loader is driver else _forever(labeled_loader)
    unlabeled_stream = None if unlabeled_loader in (None, driver) else _forever(unlabeled_loader)

    def next_batches(driver_batch):
        """This step's (labeled, unlabeled) batches; unlabeled is None when its loss is off."""
        labeled_batch = driver_batch if labeled_stream is None else next(labeled_stream)
        if unlabeled_loader is None:
            return labeled_batch, None
        return labeled_batch, driver_batch if unlabeled_stream is None else next(unlabeled_stream)

    # Replay the finished epochs' data order without computing, so that the DALI
    # readers and augmentation RNGs stand where the interrupted run left them.
    for _ in history:
        for driver_batch in itertools.islice(driver, steps_per_epoch):
            next_batches(driver_batch)
    if resumed:
        torch.set_rng_state(rng_state)
    for epoch in range(len(history) + 1, options.epochs + 1):
        train_net.train()
        sums = {
            "loss": 0.0, "correct": 0, "decisions": 0, "seen": 0,
            "unlabeled_loss": 0.0, "mask": 0.0, "steps": 0, "views": 0,
        }  # fmt: skip
        for step_in_epoch, driver_batch in enumerate(itertools.islice(driver, steps_per_epoch)):
            (images, idx), unlabeled_batch_ = next_batches(driver_batch)
            idx = idx.to(torch_dev)
            targets, weights = labeled_targets[idx], labeled_weights[idx]
            if pseudo_loader:
                pseudo_images, pseudo_idx = driver_batch
                pseudo_idx = pseudo_idx.to(torch_dev)
                step = (epoch - 1) * steps_per_epoch + step_in_epoch
                images = torch.cat([images, pseudo_images])
                targets = torch.cat([targets, pseudo_targets[pseudo_idx]])
                weights = torch.cat([weights, pseudo_weights[pseudo_idx] * rampup_weight(step, rampup_steps)])
            with torch.autocast(torch_dev.type, dtype=torch.bfloat16, enabled=options.amp):
                logits, aux_loss, mask_rate = _forward(net, aux, images, unlabeled_batch_, options.multilabel)
            # The loss in float32 (autocast leaves bf16 logits).
            logits = logits.float()
            aux_loss = None if aux_loss is None else aux_loss.float()
            loss = (soft_binary_cross_entropy if options.multilabel else soft_cross_entropy)(logits, targets, weights)
            if aux_loss is not None:
                loss = loss + aux.weight * aux_loss
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
            if average is not None:
                average.update(model)
            sums["loss"] += loss.item() * len(images)
            correct, decisions = _right_decisions(logits, targets, options.multilabel)
            sums["correct"] += correct
            sums["decisions"] += decisions
            sums["seen"] += len(images)
            if aux_loss is not None:
                sums["unlabeled_loss"] += aux_loss.item()
                sums["mask"] += mask_rate
                sums["steps"] += 1
                sums["views"] += _unlabeled_views(aux, unlabeled_batch_)
        loss_sum, correct, decisions, seen, aux_sum, mask_sum, aux_steps, views = sum_over_ranks(
            [sums[key] for key in ("loss", "correct", "decisions", "seen", "unlabeled_loss", "mask", "steps", "views")],
            world,
        )
        record = {"epoch": epoch, "loss": loss_sum / seen, "train_accuracy": correct / decisions, "images": int(seen)}
        if aux_steps:
            # The unlabeled images the epoch pushed through the network (consistency: both
            # views), so that images/s measures the work done, not the labeled rows alone.
            record["unlabeled_images"] = int(views)
            record["unlabeled_loss"] = aux_sum / aux_steps
            if aux.kind == "consistency":
                # Share of unlabeled rows (multilabel: (row, class) pairs) whose weak view
                # was confident enough to train on.
                record["unlabeled_mask"] = mask_sum / aux_steps
        history.append(record)
        if checkpoint is not None:
            save_checkpoint(checkpoint, fingerprint, train_net, optimizer, scheduler, average, history, world)
        if on_epoch:
            on_epoch(record)
    if average is not None:
        average.copy_to(model)
    if layout_hook is not None:
        layout_hook.remove()
    return history


def _to_channels_last(module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: 4-D image batches (B, 3, S, S) in NHWC memory order."""
    return tuple(a.contiguous(memory_format=torch.channels_last) if torch.is_tensor(a) and a.dim() == 4 else a for a in args)


def _right_decisions(logits: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> tuple[int, int]:
    """(right decisions, decisions) of a batch: logits and targets (B, C). Multiclass: one
    decision per row, its argmax; multilabel: one per (row, class), present when the
    logit is above 0 (sigmoid 0.5) and the target at least 0.5."""
    if multilabel:
        return int(((logits > 0) == (targets >= 0.5)).sum().item()), targets.numel()
    return int((logits.argmax(1) == targets.argmax(1)).sum().item()), len(targets)


def _forward(
    net: nn.Module, aux: UnlabeledLoss, images: torch.Tensor, unlabeled_batch, multilabel: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """(logits (B, C) of the labeled and pseudo rows, the unlabeled loss or None, share of
    unlabeled rows (multilabel: (row, class) pairs) that passed the consistency threshold)."""
    if aux.kind == "consistency":
        weak, strong, _ = unlabeled_batch
        # One forward over all three parts: batch-norm statistics see them together.
        all_logits = net(torch.cat([images, weak, strong]))
        n = images.shape[0]
        weak_logits, strong_logits = all_logits[n:].chunk(2)
        consistency = binary_consistency_loss if multilabel else consistency_loss
        aux_loss, mask = consistency(weak_logits, strong_logits, aux.threshold)
        return all_logits[:n], aux_loss, float(mask.mean())
    if aux.kind == "rotation":
        unlabeled_images, _ = unlabeled_batch
        rotated, turns = rotate_batch(torch.cat([images, unlabeled_images]))
        logits, rotation_logits = net(images, rotated)
        return logits, F.cross_entropy(rotation_logits, turns), 0.0
    return net(images), None, 0.0


def _unlabeled_views(aux: UnlabeledLoss, unlabeled_batch) -> int:
    """Unlabeled images one step forwards: the weak and strong view of each row
    (consistency), or each row once (rotation)."""
    if aux.kind == "consistency":
        return 2 * unlabeled_batch[0].shape[0]
    return unlabeled_batch[0].shape[0]


def _forever(loader: ImageLoader) -> Iterator[tuple[torch.Tensor, ...]]:
    while True:
        yield from loader


__all__ = ["TASKS", "FitOptions", "TrainSet", "UnlabeledLoss", "fit", "seed_everything"]
