"""Fan the shards of `infer@k` out as Prefect tasks, on threads here or on a Dask cluster.

Each task runs `python -m stages.infer ... --shard-id i --num-shards n` in the
project directory, writing `data/gen{k}/pseudo_labels/part-{i:05d}.parquet`. The
flow then runs `dvc repro infer@k` as for any stage: the stage finds every part
already written by this teacher and params, keeps them, and DVC records the
round's table. With Dask, every worker must see the project directory at the
same path (a shared filesystem) and have selftrain's dependencies installed.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, task
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.stage_output import (
    StageFailed,
    StageFailedOnInput,
    failure,
    retry_if_it_can_pass,
    run_logger,
    run_streaming,
    stage_log_path,
)
from selftrain.config import InferConfig, Params
from selftrain.paths import ProjectPaths

DASK_ADDRESS_ENV = "SELFTRAIN_DASK_ADDRESS"


class ShardFailed(StageFailed):
    """A shard's `stages.infer` exited non-zero; the message is one line with its last output lines."""


class ShardFailedOnInput(ShardFailed, StageFailedOnInput):
    """A shard rejected its input (a missing teacher, bad params): retrying cannot help."""


@dataclass(frozen=True)
class ShardRun:
    shard_id: int
    seconds: float
    # The stage's own summary line ("... rows written" or "... kept").
    summary: str
    # host:thread that ran the task, to find a shard's machine in the logs.
    worker: str


def shard_command(params_file: str, gen: int, teacher: int, shard_id: int, num_shards: int) -> list[str]:
    """`python -m stages.infer` for one shard, with dvc.yaml's paths (relative to the project)."""
    paths = ProjectPaths()
    return [
        sys.executable, "-m", "stages.infer",
        "--params", params_file,
        "--gen", str(gen),
        "--manifest", str(paths.manifest),
        "--teacher", str(paths.model_dir(teacher)),
        "--out", str(paths.pseudo_labels(gen)),
        "--shard-id", str(shard_id),
        "--num-shards", str(num_shards),
    ]  # fmt: skip


@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=retry_if_it_can_pass,
    task_run_name="infer@{gen} shard {shard_id}/{num_shards}",
)
def infer_shard(
    project_dir: str, gen: int, teacher: int, shard_id: int, num_shards: int, params_file: str = "params.yaml"
) -> ShardRun:
    """Write one part of round `gen`'s table (a part already written by this teacher is kept)."""
    logger = run_logger()
    started = time.perf_counter()
    output = run_streaming(
        shard_command(params_file, gen, teacher, shard_id, num_shards),
        cwd=project_dir,
        env=dict(os.environ),
        log=stage_log_path(project_dir, f"infer@{gen}-shard-{shard_id}-of-{num_shards}"),
        on_line=logger.info,
    )
    if output.returncode != 0:
        raise failure(
            f"infer@{gen} shard {shard_id}/{num_shards}", output.returncode, output.tail, output.log,
            kinds=(ShardFailed, ShardFailedOnInput),
        )  # fmt: skip
    summary = next((line for line in output.tail if f"shard {shard_id}/" in line), "")
    worker = f"{socket.gethostname()}:{threading.current_thread().name}"
    return ShardRun(shard_id, time.perf_counter() - started, summary, worker)


def shard_task_runner(config: InferConfig, workers: int) -> TaskRunner:
    """The task runner `infer.task_runner` names.

    "thread": up to `workers` shards at once on this machine. "dask": the scheduler at
    `infer.dask_address`, else at $SELFTRAIN_DASK_ADDRESS, else a local cluster of
    `workers` in-process workers (loopback only, no dashboard).
    """
    if config.task_runner == "thread":
        return ThreadPoolTaskRunner(max_workers=workers)
    from prefect_dask import DaskTaskRunner  # only a dask deployment needs it installed

    address = config.dask_address or os.environ.get(DASK_ADDRESS_ENV)
    if address:
        return DaskTaskRunner(address=address)
    # Each shard is a subprocess, so in-process workers (threads) are enough locally.
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": False,
            "dashboard_address": None,
        }
    )


@flow(name="infer-shards", log_prints=True)
def fan_out_shards(
    project_dir: str,
    gen: int,
    teacher: int,
    num_shards: int,
    params_file: str = "params.yaml",
    retries: int = 2,
    retry_delay_seconds: float = 5.0,
) -> list[ShardRun]:
    """Submit every shard of round `gen` to this flow's task runner and wait for all."""
    shard = infer_shard.with_options(retries=retries, retry_delay_seconds=retry_delay_seconds)
    futures = [
        shard.submit(project_dir, gen, teacher, shard_id, num_shards, params_file)
        for shard_id in range(num_shards)
    ]
    runs = [future.result() for future in futures]
    for run in runs:
        print(f"{run.summary} ({run.seconds:.1f}s on {run.worker})")
    return runs


def run_shards(project_dir: str, gen: int, params: Params, params_file: str = "params.yaml") -> list[ShardRun]:
    """Fan round `gen`'s shards out on the task runner params choose; wait for every shard."""
    num_shards = params.infer.num_shards
    workers = max(1, min(num_shards, os.cpu_count() or 1))
    runner = shard_task_runner(params.infer, workers)
    return fan_out_shards.with_options(task_runner=runner)(
        str(Path(project_dir)),
        gen,
        params.generations[gen].teacher,
        num_shards,
        params_file,
        params.loop.retries,
        params.loop.retry_delay_seconds,
    )
