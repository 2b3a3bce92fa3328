"""What the two training stages share: torchrun relaunch, the process group, per-epoch
progress, rank 0's writes."""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable

from selftrain.augment import resolve_device
from selftrain.config import Params
from selftrain.distributed import World, apply_thread_count, needs_relaunch, process_group, relaunch
from selftrain.models import save_model
from selftrain.paths import ProjectPaths
from selftrain.tracking import LiveCurves


def add_training_flags(p: argparse.ArgumentParser) -> None:
    """The flags both training stages take: where the curves go, and the resume checkpoint."""
    p.add_argument("--live-dir", required=True, help="DVCLive directory for per-epoch curves")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="per-epoch state for resuming an interrupted run (default: checkpoints/gen{k}.pt)",
    )


def checkpoint_path(flag: str | None, gen: int) -> Path:
    """The --checkpoint given, else generation `gen`'s default (`ProjectPaths.checkpoint`)."""
    return Path(flag) if flag else ProjectPaths().checkpoint(gen)


def epoch_line(label: str, record: dict, epochs: int, images_per_second: float, eta_seconds: float) -> str:
    """`train_teacher: epoch 3/10  loss 0.8123  accuracy 0.7400  412 images/s  ETA 0:00:41`."""
    eta = timedelta(seconds=round(eta_seconds))
    return (
        f"{label}: epoch {record['epoch']}/{epochs}  loss {record['loss']:.4f}  "
        f"accuracy {record['train_accuracy']:.4f}  {images_per_second:.0f} images/s  ETA {eta}"
    )


def student_images_per_epoch(pseudo_rows: int, batch_size: int, batch_ratio: float) -> int:
    """Images a student epoch reads: each of its steps takes one pseudo-labelled batch
    (batch_size x batch_ratio rows) and one labeled batch, as `fit` composes them."""
    pseudo_batch = max(1, round(batch_size * batch_ratio))
    return pseudo_rows + math.ceil(pseudo_rows / pseudo_batch) * batch_size


class EpochProgress:
    """As each epoch ends: one line on stdout and one DVCLive step (rank 0 only).

    `fit` passes the epoch's record (epoch, loss, train_accuracy, already summed over
    ranks); speed and ETA come from this clock. A resumed run's first epoch is not 1:
    its ETA averages only the epochs this process trained.
    """

    def __init__(self, label: str, epochs: int, live_dir: str, is_main: bool, clock=time.monotonic):
        self.label = label
        self.epochs = epochs
        self.is_main = is_main
        self.curves = LiveCurves(live_dir) if is_main else None
        self._clock = clock
        self._images_per_epoch = 0
        self._started = self._last = clock()
        self._trained = 0

    def start(self, images_per_epoch: int) -> None:
        """Start the clock once the data is loaded, just before the first epoch."""
        self._images_per_epoch = images_per_epoch
        self._started = self._last = self._clock()

    def __call__(self, record: dict) -> None:
        if not self.is_main:
            return
        now = self._clock()
        self._trained += 1
        seconds_per_epoch = (now - self._started) / self._trained
        # `fit` counts the labeled and pseudo-labelled images of the epoch and the unlabeled
        # images its unlabeled loss read (over all ranks); the estimate from the
        # training-set size is for records without that count.
        images = record.get("images", self._images_per_epoch) + record.get("unlabeled_images", 0)
        images_per_second = images / max(now - self._last, 1e-9)
        self._last = now
        eta = seconds_per_epoch * (self.epochs - record["epoch"])
        print(epoch_line(self.label, record, self.epochs, images_per_second, eta), flush=True)
        self.curves.log_epoch(record)

    def close(self, history: list[dict]) -> None:
        if self.is_main:
            self.curves.close(history)


def train_and_save(
    module: str,
    argv: list[str] | None,
    params: Params,
    train: Callable[[World, EpochProgress], tuple],
    *,
    epochs: int,
    out: str,
    live_dir: str,
    checkpoint: Path,
    label: str,
) -> None:
    """Run `train(world, progress)` -> (model, header, history); rank 0 writes the model.

    `train` loads its data, calls `progress.start(images_per_epoch)` and passes
    `progress` to fit as `on_epoch`: a line and a DVCLive step per epoch of `epochs`.
    With `distributed.processes` > 1 and not yet under torchrun, the stage instead runs
    again as that many ranks (`python -m <module> argv` under torchrun) and exits with
    their status. The checkpoint is removed once the model is saved.
    """
    if needs_relaunch(params.distributed):
        argv = sys.argv[1:] if argv is None else argv
        sys.exit(relaunch(module, argv, params.distributed.processes))
    threads = apply_thread_count(params.distributed)
    with process_group(params.distributed, resolve_device(params.augment.device)) as world:
        progress = EpochProgress(label, epochs, live_dir, world.is_main)
        model, header, history = train(world, progress)
    progress.close(history)
    if not world.is_main:
        return
    save_model(model, header, out)
    checkpoint.unlink(missing_ok=True)
    if not history:
        # An imported generation 0 (teacher.epochs 0) has no curves; dvc.yaml still
        # declares their folder, so it exists, empty.
        (Path(live_dir) / "plots" / "metrics").mkdir(parents=True, exist_ok=True)
        print(f"{label}: {header.num_parameters} parameters, imported from {header.source} without training")
        return
    print(f"{label}: {header.num_parameters} parameters, {threads} torch threads, last epoch {history[-1]}")
