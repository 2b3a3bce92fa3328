"""What the two training stages share: torchrun relaunch, the process group, rank 0's writes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from selftrain.augment import resolve_device
from selftrain.config import Params
from selftrain.distributed import World, apply_thread_count, needs_relaunch, process_group, relaunch
from selftrain.models import save_model
from selftrain.tracking import log_history


def train_and_save(
    module: str,
    argv: list[str] | None,
    params: Params,
    train: Callable[[World], tuple],
    *,
    out: str,
    live_dir: str,
    checkpoint: Path,
    label: str,
) -> None:
    """Run `train(world)` -> (model, header, history); rank 0 writes the model and curves.

    With `distributed.processes` > 1 and not yet under torchrun, the stage instead runs
    again as that many ranks (`python -m <module> argv` under torchrun) and exits with
    their status. The checkpoint is removed once the model is saved.
    """
    if needs_relaunch(params.distributed):
        argv = sys.argv[1:] if argv is None else argv
        sys.exit(relaunch(module, argv, params.distributed.processes))
    threads = apply_thread_count(params.distributed)
    with process_group(params.distributed, resolve_device(params.augment.device)) as world:
        model, header, history = train(world)
    if not world.is_main:
        return
    save_model(model, header, out)
    log_history(history, live_dir)
    checkpoint.unlink(missing_ok=True)
    print(f"{label}: {header.num_parameters} parameters, {threads} torch threads, last epoch {history[-1]}")
