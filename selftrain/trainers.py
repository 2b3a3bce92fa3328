"""What each generation learns from: the teacher's and each student's training run,
the student's optional labeled fine-tune, and the temperature fitted on val."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from selftrain.augment import resolve_device
from selftrain.calibration import fit_temperature
from selftrain.config import Params, StudentConfig, TeacherConfig
from selftrain.data import Dataset, input_normalization, input_size
from selftrain.distributed import SINGLE_PROCESS, World
from selftrain.errors import TrainingError
from selftrain.infer import predict_split
from selftrain.models import Calibrated, ModelHeader, create_model, header_for
from selftrain.train import FitOptions, TrainSet, UnlabeledLoss, fit, seed_everything


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


def unlabeled_paths(dataset: Dataset) -> list[str]:
    """The unlabeled pool's image files, for the auxiliary unlabeled loss."""
    return list(dataset.resolve(dataset.unlabeled()["path"]))


def unlabeled_loss(cfg: TeacherConfig | StudentConfig, dataset: Dataset) -> tuple[UnlabeledLoss, list[str] | None]:
    """The unlabeled loss a teacher or student section asks for, and the images it reads
    (None when it is off)."""
    loss = UnlabeledLoss(cfg.unlabeled, cfg.unlabeled_weight, cfg.unlabeled_threshold, cfg.unlabeled_ratio)
    return loss, (unlabeled_paths(dataset) if cfg.unlabeled != "none" else None)


def calibrated(model: nn.Module, dataset: Dataset, params: Params) -> Calibrated:
    """`model` with a temperature fitted on the val split (1.0 when calibration is off or
    there is no val split)."""
    val = dataset.rows("val")
    temperature = 1.0
    if params.calibration.enabled and len(val):
        logits = predict_split(model, dataset, val, params, logits=True)
        temperature = fit_temperature(logits, val["label"].to_numpy(np.int64))
    return Calibrated(model, temperature).eval()


def train_teacher(
    dataset: Dataset,
    params: Params,
    on_epoch=None,
    checkpoint: Path | None = None,
    world: World = SINGLE_PROCESS,
) -> tuple[Calibrated, ModelHeader, list[dict]]:
    cfg = params.teacher
    aux, pool = unlabeled_loss(cfg, dataset)
    options = FitOptions(
        epochs=cfg.epochs,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        image_size=input_size(dataset, params.data),
        normalization=input_normalization(dataset, params.data),
        seed=params.seed,
        optim=params.optim,
        augment=params.augment,
        input_noise=cfg.input_noise,
        unlabeled=aux,
        ema_decay=cfg.ema_decay,
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
        unlabeled=pool,
    )
    result = calibrated(model, dataset, params)
    header = header_for(model, params, dataset, 0, float(result.temperature))
    return result, header, history


def train_student(
    dataset: Dataset,
    refined: pd.DataFrame,
    params: Params,
    gen: int,
    on_epoch=None,
    checkpoint: Path | None = None,
    world: World = SINGLE_PROCESS,
) -> tuple[Calibrated, ModelHeader, list[dict]]:
    cfg = params.student
    aux, pool = unlabeled_loss(cfg, dataset)
    width, depth = params.model_size(gen)
    generation = params.generations[gen]
    options = FitOptions(
        epochs=generation.epochs or cfg.epochs,
        lr=generation.lr or cfg.lr,
        batch_size=cfg.batch_size,
        image_size=input_size(dataset, params.data),
        normalization=input_normalization(dataset, params.data),
        seed=params.seed + gen,
        optim=params.optim,
        augment=params.augment,
        input_noise=cfg.input_noise,
        batch_ratio=cfg.batch_ratio,
        unlabeled=aux,
        ema_decay=cfg.ema_decay,
        pseudo_rampup_epochs=cfg.pseudo_rampup_epochs,
    )
    seed_everything(options.seed)
    model = create_model(width, depth, cfg.dropout, cfg.drop_path, dataset.num_classes)
    labeled = labeled_train_set(dataset)
    device = resolve_device(params.augment.device)
    history = fit(
        model,
        labeled,
        pseudo_train_set(dataset, refined, gen),
        options,
        device,
        f"train_student@{gen}",
        on_epoch,
        checkpoint,
        world,
        unlabeled=pool,
    )
    if cfg.finetune_epochs:
        history += _finetune(model, labeled, options, cfg.finetune_epochs, cfg.finetune_lr, device, gen, on_epoch, checkpoint, world)
    result = calibrated(model, dataset, params)
    header = header_for(model, params, dataset, gen, float(result.temperature))
    return result, header, history


def _finetune(model, labeled, options, epochs, lr, device, gen, on_epoch, checkpoint, world) -> list[dict]:
    """Epochs on the labeled rows alone (no unlabeled loss, no weight average), numbered
    after the main run's; its own checkpoint, removed when it is done."""
    finetune_options = dataclasses.replace(
        options, epochs=epochs, lr=lr, unlabeled=UnlabeledLoss(), ema_decay=0.0, pseudo_rampup_epochs=0
    )
    finetune_checkpoint = None if checkpoint is None else Path(checkpoint).with_suffix(".finetune.pt")
    offset = options.epochs
    records = fit(
        model, labeled, None, finetune_options, device, f"train_student@{gen} fine-tune",
        None if on_epoch is None else (lambda r: on_epoch({**r, "epoch": r["epoch"] + offset})),
        finetune_checkpoint, world,
    )  # fmt: skip
    if finetune_checkpoint is not None and world.is_main:
        finetune_checkpoint.unlink(missing_ok=True)
    return [{**record, "epoch": record["epoch"] + offset} for record in records]


__all__ = [
    "calibrated",
    "labeled_train_set",
    "pseudo_train_set",
    "train_student",
    "train_teacher",
    "unlabeled_loss",
    "unlabeled_paths",
]
