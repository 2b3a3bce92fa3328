"""The noisy-student loop as a Prefect flow over DVC stages.

One execution path: every step is `dvc repro --single-item <stage>`, so DVC
decides what is cached, records lineage in dvc.lock, and a flow run leaves
`dvc status` clean. Prefect adds retries, logs, run history and schedules.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml
from prefect import flow, get_run_logger, task

from flows.artifacts import publish_round
from flows.plan import check_plan
from flows.sharding import run_shards
from flows.stage_output import (
    StageFailed,
    StageOutput,
    failure,
    retry_if_it_can_pass,
    run_logger,
    run_streaming,
    stage_log_path,
)
from selftrain.config import load_params
from selftrain.gate import (
    best_index,
    decide,
    metric_name,
    read_metrics,
    selection_metric,
    tie_tolerance,
    val_score,
    val_size,
)
from selftrain.paths import ProjectPaths
from selftrain.summary import format_table, generation_table, table_records
from selftrain.workspace import hold_workspace

# DVC's closing line of a failed stage: it repeats the command and gives the exit status.
DVC_FAILURE_PREFIX = "ERROR: failed to reproduce"
# Run after a loop that reached the last generation in params.yaml: they read, and
# depend on, exactly the generations params.yaml defines.
SELECT_BEST_STAGE = "select_best"
REPORT_STAGE = "report"


@dataclass(frozen=True)
class StageRun:
    stage: str
    seconds: float
    ran: bool  # False when DVC found the stage cached and skipped it


def stage_order(generations: int) -> list[str]:
    """DVC stage names of generations 0..N in the order the loop runs them."""
    order = ["prepare", "train_teacher", "evaluate@0"]
    for k in range(1, generations + 1):
        order += round_stages(k)
    return order


def _stage_env() -> dict[str, str]:
    # DVC runs each stage's `python -m stages.x`; put this interpreter's bin dir
    # first on PATH so that `python` is the one with selftrain's dependencies.
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _dvc(project_dir: str, *args: str) -> subprocess.CompletedProcess:
    """Run one DVC command in the project with the stages' environment; output captured."""
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=project_dir,
        env=_stage_env(),
        capture_output=True,
        text=True,
    )


# Retries here are defaults for `run_stage.fn` callers; the flow sets them from params.loop.
@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=retry_if_it_can_pass,
    task_run_name="dvc repro {stage}",
)
def run_stage(stage: str, project_dir: str) -> StageRun:
    """Run one DVC stage (cached stages are skipped by DVC itself), logging its lines as they come."""
    logger = run_logger()
    seen = {"skipped": False, "locked": False}

    def on_line(line: str) -> None:
        logger.info(line)
        seen["skipped"] |= "didn't change, skipping" in line
        seen["locked"] |= "Unable to acquire lock" in line

    started = time.perf_counter()
    output = run_streaming(
        [sys.executable, "-m", "dvc", "repro", "--single-item", stage],
        cwd=project_dir,
        env=_stage_env(),
        log=stage_log_path(project_dir, stage),
        on_line=on_line,
    )
    seconds = time.perf_counter() - started
    if output.returncode != 0:
        if seen["locked"]:
            raise StageFailed(
                f"dvc repro {stage}: another DVC command is using this repository "
                f"({Path(project_dir).resolve()}); wait for it to finish and run again"
            )
        raise stage_failure(stage, output)
    ran = not seen["skipped"]
    logger.info("%s %s in %.1fs", stage, "ran" if ran else "cached", seconds)
    return StageRun(stage=stage, seconds=seconds, ran=ran)


def stage_failure(stage: str, output: StageOutput) -> StageFailed:
    """One line: the stage, its exit status, its last output lines and where the whole output is."""
    closing = [line for line in output.tail if line.startswith(DVC_FAILURE_PREFIX)]
    match = re.search(r"exited with (-?\d+)", closing[-1]) if closing else None
    code = int(match.group(1)) if match else output.returncode
    own = [line for line in output.tail if not line.startswith(DVC_FAILURE_PREFIX)]
    return failure(f"stage {stage}", code, own, output.log)


def stage_is_current(stage: str, project_dir: str) -> bool:
    """True when `dvc status` finds the stage's deps, params and outs as dvc.lock records them.

    Any failure of `dvc status` counts as not current: the caller then does the work.
    """
    proc = _dvc(project_dir, "status", "--json", stage)
    if proc.returncode != 0:
        return False
    try:
        return json.loads(proc.stdout or "null") == {}
    except json.JSONDecodeError:
        return False


def round_stages(gen: int) -> list[str]:
    return [f"infer@{gen}", f"refine@{gen}", f"train_student@{gen}", f"evaluate@{gen}"]


def experiment_name(flow_run_id: str | None) -> str:
    """A git-ref-safe DVC experiment name carrying the run's time and id."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{stamp}-{(flow_run_id or 'local')[:8]}"


def pipeline_files(project_dir: str, untracked: list[str]) -> list[str]:
    """Of the untracked paths, those the pipeline wrote: dvc.lock and the outputs it records
    (metrics and plots are `cache: false`, so git sees them), with DVC's .gitignore files
    beside them. Anything else (notes, scratch files) stays out of an experiment."""
    lock = Path(project_dir) / "dvc.lock"
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {}) if lock.exists() else {}
    outs = [Path(out["path"]) for stage in stages.values() for out in stage.get("outs", [])]
    dirs = {out.parent for out in outs}

    def pipeline_file(name: str) -> bool:
        path = Path(name)
        if name == "dvc.lock" or (path.name == ".gitignore" and path.parent in dirs):
            return True
        return any(path == out or out in path.parents for out in outs)

    return [name for name in untracked if pipeline_file(name)]


def pipeline_stages(project_dir: str) -> set[str]:
    """Every stage dvc.yaml defines (`foreach` stages as name@key)."""
    proc = _dvc(project_dir, "stage", "list", "--name-only")
    if proc.returncode != 0:
        raise StageFailed(f"dvc stage list failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    return set(proc.stdout.split())


@task(task_run_name="dvc exp save {name}")
def save_experiment(project_dir: str, name: str, stages: list[str]) -> str:
    """Record the finished run (params, metrics, dvc.lock) as a DVC experiment."""
    # Metrics, plots and reports are git-tracked outputs (cache: false) that a fresh
    # workspace has not committed yet; without them `dvc exp show` has no metrics.
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"],
        cwd=project_dir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    include = [arg for path in pipeline_files(project_dir, untracked) for arg in ("--include-untracked", path)]
    # Limited to the stages this run produced: a stopped or shortened run has no
    # outputs for later generations, and DVC refuses to save missing outputs. A run
    # that produced every stage names none: the same experiment, but DVC commits the
    # stages in one pass instead of one per target (measured 6 s against 18 s).
    targets = [] if set(stages) == pipeline_stages(project_dir) else stages
    proc = _dvc(project_dir, "exp", "save", "--name", name, *include, *targets)
    if proc.returncode != 0:
        raise StageFailed(f"dvc exp save failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    return name


def _lock_text(project_dir: str) -> str | None:
    lock = Path(project_dir) / "dvc.lock"
    return lock.read_text() if lock.exists() else None


@flow(name="noisy-student-loop", log_prints=True)
def noisy_student_loop(project_dir: str = ".", generations: int | None = None) -> dict:
    """Run prepare and the teacher, then each generation's infer, refine,
    train_student and evaluate, until the last generation or the gate stops it.

    Args:
        project_dir: the DVC project (holds dvc.yaml and params.yaml).
        generations: stop after this generation (default: every generation in
            params.yaml). The run equals `dvc repro evaluate@N` (then select_best and
            report, when N is the last generation in params.yaml).

    Returns:
        `rows` (one summary row per generation run, teacher first), `best_generation`
        (best val accuracy, val mAP in a multilabel run, among the generations this run
        evaluated), `stopped_after`
        and `stop_reason` (None when the loop ran to its end), and `experiment` (the
        DVC experiment name of this run; None when every stage was cached).
    """
    logger = get_run_logger()
    params = load_params(Path(project_dir) / "params.yaml")
    paths = ProjectPaths(Path(project_dir))
    last = check_plan(project_dir, params, generations)
    stage = run_stage.with_options(
        retries=params.loop.retries, retry_delay_seconds=params.loop.retry_delay_seconds
    )
    decision = None
    with hold_workspace(project_dir, params.loop.lock_timeout_seconds):
        lock_before = _lock_text(project_dir)
        for name in stage_order(0):
            stage(name, project_dir)
        # Val accuracy, or val mAP in a multilabel run (the metrics file says which).
        val_scores = [val_score(paths, 0)]
        metric = metric_name(paths, 0)
        # The near-tie rule of select_best: within one val item of the best is a tie (val accuracy).
        tolerance = tie_tolerance(val_size(paths, 0), selection_metric(read_metrics(paths, 0)))
        for gen in range(1, last + 1):
            if params.infer.num_shards > 1 and not stage_is_current(f"infer@{gen}", project_dir):
                # The shards run as tasks (threads or Dask); `dvc repro infer@k` then
                # finds every part written by this teacher and only records the round.
                # Skipped when the round is already recorded: each shard would start
                # only to find its part current.
                run_shards(project_dir, gen, params)
            for name in round_stages(gen):
                stage(name, project_dir)
            publish_round(project_dir, gen)
            val_scores.append(val_score(paths, gen))
            decision = decide(val_scores, params.loop.min_gain, params.loop.patience, tolerance, metric)
            if decision.stop:
                logger.warning("stopping the loop: %s", decision.reason)
                break
        ran_until = len(val_scores) - 1
        produced = stage_order(ran_until)
        if ran_until == params.num_generations:
            stage(SELECT_BEST_STAGE, project_dir)
            stage(REPORT_STAGE, project_dir)
            produced += [SELECT_BEST_STAGE, REPORT_STAGE]
        else:
            # They depend on every generation params.yaml defines; this run has fewer.
            logger.warning(
                "select_best and report skipped: they cover the %d generations in params.yaml and this "
                "run ended after generation %d (models/best.json and reports/ are not this run's); to "
                "select and report on 0..%d, set that many generations in params.yaml and dvc.yaml "
                "and run `dvc repro select_best report`",
                params.num_generations, ran_until, ran_until,
            )
        # An experiment per run that changed something: a run whose every stage was
        # cached leaves dvc.lock as it was and would only repeat the last experiment.
        experiment = None
        if _lock_text(project_dir) != lock_before:
            experiment = save_experiment(project_dir, experiment_name(_flow_run_id()), produced)
        else:
            logger.info("every stage was cached: no new experiment")
    # From this run's own val accuracies, never from metrics files on disk (an older,
    # longer run may have left better-looking ones behind).
    best = best_index(val_scores, tolerance)
    table = generation_table(paths, ran_until)
    logger.info("per-generation summary (best: generation %d):\n%s", best, format_table(table))
    stopped = decision is not None and decision.stop
    return {
        "rows": table_records(table),
        "best_generation": best,
        "stopped_after": ran_until if stopped else None,
        "stop_reason": decision.reason if stopped else None,
        "experiment": experiment,
    }


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return flow_run.id
