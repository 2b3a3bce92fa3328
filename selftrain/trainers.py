"""What each generation learns from: the teacher's and each student's training run,
where its weights start, the student's optional labeled fine-tune, and the
temperature fitted on val.

In the multi-label task (params `task`) labeled and val targets are the manifest's
`labels` sets as 0/1 rows (`Dataset.label_targets`); pseudo-labelled targets are
refined.parquet's `target` vectors in either task."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from torch import nn

from selftrain.architectures import build_model
from selftrain.augment import resolve_device
from selftrain.calibration import fit_task_temperature
from selftrain.config import Params, StudentConfig, TeacherConfig
from selftrain.data import Dataset, input_normalization, input_size
from selftrain.distributed import SINGLE_PROCESS, World
from selftrain.errors import TrainingError
from selftrain.models import Calibrated, ModelHeader, header_for, load_model
from selftrain.prediction import predict_split
from selftrain.train import FitOptions, TrainSet, UnlabeledLoss, fit, seed_everything
from selftrain.weights import load_matching, load_weights, name_list


def labeled_train_set(dataset: Dataset, task: str = "multiclass") -> TrainSet:
    """The labeled rows: one-hot targets of `label` (multiclass), 0/1 rows of the `labels`
    sets (multilabel)."""
    rows = dataset.labeled()
    if task == "multilabel":
        paths = dataset.resolve(rows["path"])
        return TrainSet(paths, dataset.label_targets(rows), np.ones(len(paths), dtype=np.float32))
    return TrainSet.from_labels(dataset.resolve(rows["path"]), rows["label"].to_numpy(np.int64), dataset.num_classes)


def pseudo_train_set(dataset: Dataset, refined: pd.DataFrame, gen: int) -> TrainSet:
    """Kept rows of a refined round, each repeated `copies` times (class balancing).

    `target` is a list of C floats in both tasks: a distribution (multiclass) or per-class
    probabilities of presence, all 0 for an empty label set (multilabel)."""
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
    there is no val split): by the softmax NLL (multiclass) or the mean per-class binary
    cross-entropy of the `labels` sets (multilabel), under `calibration.prior_std`'s prior."""
    val = dataset.rows("val")
    temperature = 1.0
    if params.calibration.enabled and len(val):
        logits = predict_split(model, dataset, val, params, logits=True)
        prior_std = params.calibration.resolved_prior_std(len(val), params.data.min_val_items)
        if params.task == "multilabel":
            truth = dataset.label_targets(val)
        else:
            truth = val["label"].to_numpy(np.int64)
        fit = fit_task_temperature(logits, truth, params.task, prior_std=prior_std)
        if fit.no_errors:
            print(separable_val_warning(len(val)), file=sys.stderr)
        temperature = fit.temperature
    return Calibrated(model, temperature).eval()


def separable_val_warning(val_items: int) -> str:
    """The line a training stage prints when its val split has no error to fit a
    temperature on (`selftrain.calibration.separable`)."""
    return (
        f"calibration: warning: the model gets all {val_items} val items right, so the NLL has no "
        "minimum (it falls as T -> 0); the temperature stays 1.0. A larger val split, or "
        "calibration.prior_std set to a number, gives it something to fit"
    )


def hardware_options(params: Params) -> dict[str, bool]:
    """FitOptions' amp and channels_last: params `train` resolved for this run's device
    (auto is on under CUDA, off on the CPU)."""
    amp, channels_last = params.train.resolved(cuda=resolve_device(params.augment.device) == "gpu")
    return {"amp": amp, "channels_last": channels_last}


def initial_model(
    params: Params,
    gen: int,
    num_classes: int,
    label: str,
    teacher_dir: str | Path | None = None,
    log=print,
) -> tuple[nn.Module, str | None, dict[str, bool]]:
    """Generation `gen`'s module before training, where its weights came from (None:
    fresh) and which noise knobs its architecture applies; each fact is logged.

    Weights come from `weights` in params (teacher or generation), else, with
    student.init 'teacher', from the teacher's model in `teacher_dir`: the tensors that
    match by name and shape (all of them for the same architecture), the rest fresh.
    """
    section = "teacher" if gen == 0 else "student"
    cfg = params.teacher if gen == 0 else params.student
    arch = params.arch(gen)
    width, depth = params.model_size(gen)
    model, noise_applied = build_model(arch, width, depth, cfg.dropout, cfg.drop_path, num_classes)
    for knob, applied in noise_applied.items():
        if not applied:
            log(f"{label}: {arch} has no {knob} setting; {section}.{knob}={getattr(cfg, knob)} is not applied")
    source = params.weights(gen)
    if source is not None:
        replaced = load_weights(model, source)
        log(f"{label}: weights from {source}")
        if replaced:
            log(f"{label}: class count differs; classifier tensors replaced (fresh): {', '.join(replaced)}")
    elif gen > 0 and params.student.init == "teacher":
        if teacher_dir is None:
            raise TrainingError(f"{label}: student.init is 'teacher' but no teacher model was given")
        teacher, _ = load_model(teacher_dir)
        loaded, fresh = load_matching(model, teacher.net.state_dict())
        source = str(teacher_dir)
        log(f"{label}: {len(loaded)} tensors from the teacher {teacher_dir}, {len(fresh)} fresh")
        if fresh:
            log(f"{label}: fresh (no tensor of that name and shape in the teacher): {name_list(fresh, 10)}")
    return model, source, noise_applied


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
        epochs=params.teacher_epochs(),
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
        arch=params.arch(0),
        task=params.task,
        **hardware_options(params),
    )
    # Seeded initial weights: a rerun of the stage (another process) trains the same model.
    seed_everything(options.seed)
    model, source, noise_applied = initial_model(params, 0, dataset.num_classes, "train_teacher")
    history: list[dict] = []
    if options.epochs:
        history = fit(
            model,
            labeled_train_set(dataset, params.task),
            None,
            options,
            resolve_device(params.augment.device),
            "train_teacher",
            on_epoch,
            checkpoint,
            world,
            unlabeled=pool,
        )
    # epochs 0 imports the weights as they are; its temperature is fitted on this val split
    # like any generation's (calibration.enabled), so its confidences suit the thresholds.
    result = calibrated(model, dataset, params)
    header = header_for(model, params, dataset, 0, float(result.temperature), source, noise_applied)
    return result, header, history


def train_student(
    dataset: Dataset,
    refined: pd.DataFrame,
    params: Params,
    gen: int,
    on_epoch=None,
    checkpoint: Path | None = None,
    world: World = SINGLE_PROCESS,
    teacher_dir: str | Path | None = None,
) -> tuple[Calibrated, ModelHeader, list[dict]]:
    """A noised student; `teacher_dir` (its teacher's model) is read with student.init 'teacher'."""
    cfg = params.student
    aux, pool = unlabeled_loss(cfg, dataset)
    generation = params.generations[gen]
    options = FitOptions(
        epochs=params.student_epochs(gen),
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
        arch=params.arch(gen),
        task=params.task,
        **hardware_options(params),
    )
    seed_everything(options.seed)
    label = f"train_student@{gen}"
    model, source, noise_applied = initial_model(params, gen, dataset.num_classes, label, teacher_dir)
    labeled = labeled_train_set(dataset, params.task)
    device = resolve_device(params.augment.device)
    history = fit(
        model,
        labeled,
        pseudo_train_set(dataset, refined, gen),
        options,
        device,
        label,
        on_epoch,
        checkpoint,
        world,
        unlabeled=pool,
    )
    if cfg.finetune_epochs:
        history += _finetune(model, labeled, options, cfg.finetune_epochs, cfg.finetune_lr, device, gen, on_epoch, checkpoint, world)
    result = calibrated(model, dataset, params)
    header = header_for(model, params, dataset, gen, float(result.temperature), source, noise_applied)
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
    "hardware_options",
    "initial_model",
    "labeled_train_set",
    "pseudo_train_set",
    "separable_val_warning",
    "train_student",
    "train_teacher",
    "unlabeled_loss",
    "unlabeled_paths",
]
