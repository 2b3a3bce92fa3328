"""The noisy-student loop as a Prefect flow over DVC stages.

One execution path: every step is `dvc repro --single-item <stage>`, so DVC
decides what is cached, records lineage in dvc.lock, and a flow run leaves
`dvc status` clean. Prefect adds retries, logs, run history and schedules.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.exceptions import MissingContextError

from flows.artifacts import publish_round
from selftrain.config import load_params
from selftrain.paths import ProjectPaths
from selftrain.summary import format_table, generation_table, table_records

STDERR_TAIL_LINES = 20
# Runs after the last generation; it reads every round, so a shortened run skips it.
REPORT_STAGE = "report"


class StageFailed(RuntimeError):
    """A DVC stage exited non-zero; the message carries its last output lines."""


@dataclass(frozen=True)
class StageRun:
    stage: str
    seconds: float
    ran: bool  # False when DVC found the stage cached and skipped it


def stage_order(generations: int) -> list[str]:
    """DVC stage names in the order the loop runs them."""
    order = ["prepare", "train_teacher", "evaluate@0"]
    for k in range(1, generations + 1):
        order += [f"infer@{k}", f"refine@{k}", f"train_student@{k}", f"evaluate@{k}"]
    return order


def _stage_env() -> dict[str, str]:
    # DVC runs each stage's `python -m stages.x`; put this interpreter's bin dir
    # first on PATH so that `python` is the one with selftrain's dependencies.
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _logger() -> logging.Logger | logging.LoggerAdapter:
    # The run logger when inside a flow or task run; a module logger when a test
    # calls the task's plain function (`run_stage.fn`).
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


@task(retries=2, retry_delay_seconds=[2, 10], task_run_name="dvc repro {stage}")
def run_stage(stage: str, project_dir: str) -> StageRun:
    """Run one DVC stage (cached stages are skipped by DVC itself)."""
    logger = _logger()
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "--single-item", stage],
        cwd=project_dir,
        env=_stage_env(),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-STDERR_TAIL_LINES:])
        raise StageFailed(f"dvc repro {stage} failed (exit {proc.returncode}):\n{tail}")
    ran = "didn't change, skipping" not in output
    logger.info("%s %s in %.1fs", stage, "ran" if ran else "cached", seconds)
    return StageRun(stage=stage, seconds=seconds, ran=ran)


@flow(name="noisy-student-loop", log_prints=True)
def noisy_student_loop(project_dir: str = ".", generations: int | None = None) -> list[dict]:
    """Run prepare, the teacher, then each generation's infer, refine, train_student, evaluate.

    Args:
        project_dir: the DVC project (holds dvc.yaml and params.yaml).
        generations: stop after this generation (default: every generation in
            params.yaml). The run equals `dvc repro evaluate@N`.

    Returns:
        One summary row per generation (teacher first).
    """
    logger = get_run_logger()
    params = load_params(Path(project_dir) / "params.yaml")
    last = params.num_generations if generations is None else generations
    if not 0 <= last <= params.num_generations:
        raise ValueError(
            f"generations={last}: params.yaml defines generations 1..{params.num_generations}"
        )
    for stage in stage_order(last):
        run_stage(stage, project_dir)
        if stage.startswith("evaluate@") and stage != "evaluate@0":
            publish_round(project_dir, int(stage.split("@")[1]))
    if last == params.num_generations:
        run_stage(REPORT_STAGE, project_dir)
    table = generation_table(ProjectPaths(Path(project_dir)), last)
    logger.info("per-generation summary:\n%s", format_table(table))
    return table_records(table)
