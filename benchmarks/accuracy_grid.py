"""Accuracy grid through the product: one DVC experiment per fraction x seed x ablation.

Each configuration is queued with `dvc exp run --queue -S seed=.. -S data.labeled_fraction=..
-S <the ablation's overrides>` in a DVC project (default: this repository), so every number
comes from the stages of dvc.yaml, as a user's run would. The queue runs with
`dvc queue start -j N`; `dvc queue status` says when it is done. `dvc exp show --json` then
names each experiment's commit, its params and select_best's choice; the generations'
metrics (metrics/gen{k}.json) and refine reports (data/gen{k}/rules_report.json) are read
from that commit, the labeled row count from its manifest in the DVC cache. Records have
`benchmarks.accuracy`'s shape and go to the same kind of file, so its tables render them.

The number of generations is the project's (dvc.yaml lists their files); the ablations are
`benchmarks.ablations.ABLATIONS`. Not run here: the all-labels ceiling and the
supervised-only teacher, which train on what the pipeline never trains on.

    nice -n 19 python -m benchmarks.accuracy_grid --fractions 0.05 --seeds 0 1 2 --jobs 2 --out grid.json
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import dvc.api
import pandas as pd

from benchmarks.ablations import ABLATIONS, ablation_names, ablation_overrides
from benchmarks.accuracy import calibration_summary
from benchmarks.accuracy_tables import markdown_table, targets_table
from benchmarks.records import ROOT, load_records, save_record
from selftrain.config import read_raw_params

# `dvc queue status` words of an experiment that has not finished.
UNFINISHED = ("Queued", "Running")


def dvc_command(project: Path, *args: str) -> str:
    """Run a DVC command in `project` with this interpreter's DVC; its stdout."""
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} exited {proc.returncode}:\n{proc.stderr.strip()}")
    return proc.stdout


def experiment_name(ablation: str, fraction: float, seed: int) -> str:
    """A git-ref-safe name (no dots) that says the configuration."""
    return f"acc-{ablation}-{fraction:g}-s{seed}".replace(".", "p")


def queue_experiment(project: Path, name: str, fraction: float, seed: int, overrides: list[str]) -> None:
    sets = [f"seed={seed}", f"data.labeled_fraction={fraction}", *overrides]
    dvc_command(project, "exp", "run", "--queue", "--name", name, *(arg for s in sets for arg in ("-S", s)))


def unfinished(status_table: str, names: set[str]) -> set[str]:
    """Names of `names` that `dvc queue status` lists as queued or running."""
    waiting = set()
    for line in status_table.splitlines():
        words = line.split()
        if len(words) > 1 and words[1] in names and any(w in UNFINISHED for w in words):
            waiting.add(words[1])
    return waiting


def run_queue(project: Path, names: set[str], jobs: int, poll_seconds: float, timeout_seconds: float) -> None:
    """Start the workers, wait until none of `names` is queued or running, stop the workers."""
    # The workers are daemons that inherit the starter's stdout and stderr: captured pipes
    # would stay open (and `subprocess.run` wait) for as long as a worker lives.
    started = subprocess.run(
        [sys.executable, "-m", "dvc", "queue", "start", "--jobs", str(jobs)],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    if started.returncode != 0:
        raise RuntimeError(f"dvc queue start exited {started.returncode} in {project}")
    deadline = time.monotonic() + timeout_seconds
    try:
        while waiting := unfinished(dvc_command(project, "queue", "status"), names):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still queued or running after {timeout_seconds:.0f} s: {sorted(waiting)}")
            time.sleep(poll_seconds)
    finally:
        # An idle worker otherwise outlives the benchmark.
        dvc_command(project, "queue", "stop")


def shown_experiments(project: Path) -> dict[str, dict]:
    """Name -> {rev, state, params, summary} of every experiment `dvc exp show --json` lists."""
    found = {}
    for commit in json.loads(dvc_command(project, "exp", "show", "--json")):
        for experiment in commit.get("experiments") or []:
            for rev in experiment["revs"]:
                data = rev.get("data") or {}
                summary = (data.get("metrics") or {}).get("metrics/summary.json", {}).get("data")
                found[rev["name"]] = {
                    "rev": rev["rev"],
                    "state": (experiment.get("executor") or {}).get("state", "success"),
                    "params": data.get("params", {}).get("params.yaml", {}).get("data", {}),
                    "summary": summary,
                }
    return found


def committed_json(project: Path, rev: str, path: str) -> dict:
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=project, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"experiment {rev[:7]} has no {path}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def labeled_rows(project: Path, rev: str) -> int:
    """Labeled rows of the experiment's prepared manifest (a DVC output: read from the cache)."""
    manifest = dvc.api.read("data/prepared/manifest.parquet", repo=str(project), rev=rev, mode="rb")
    return int((pd.read_parquet(io.BytesIO(manifest))["split"] == "labeled").sum())


def experiment_record(project: Path, shown: dict, num_generations: int) -> dict:
    """One `benchmarks.accuracy` record from an experiment's commit."""
    rev = shown["rev"]
    teacher = committed_json(project, rev, "metrics/gen0.json")
    record = {
        "labeled_rows": labeled_rows(project, rev),
        "teacher": teacher["accuracy"],
        "teacher_val": teacher.get("val", {}).get("accuracy"),
        "val_size": teacher.get("val_size"),
        "teacher_calibration": calibration_summary(teacher),
        "generations": [],
        # What the pipeline's select_best chose (metrics/summary.json), beside the records'
        # own best_by_val, which applies the same rule.
        "best_generation": (shown["summary"] or {}).get("best_generation"),
        "experiment": rev,
    }
    for gen in range(1, num_generations + 1):
        metrics = committed_json(project, rev, f"metrics/gen{gen}.json")
        report = committed_json(project, rev, f"data/gen{gen}/rules_report.json")
        accuracy = report.get("accuracy") or {}
        record["generations"].append(
            {
                "gen": gen,
                "test_accuracy": metrics["accuracy"],
                "val_accuracy": metrics.get("val", {}).get("accuracy"),
                "kept": report["kept"],
                "pseudo_accuracy_before": accuracy.get("before"),
                "pseudo_accuracy_after": accuracy.get("after"),
                "calibration": calibration_summary(metrics),
            }
        )
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--project", default=str(ROOT), help="DVC project (a git repository) the experiments run in")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.02], help="labeled share of the non-test pool")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds (split, init, noise)")
    p.add_argument(
        "--ablations",
        default="none",
        help=f"'none' (baseline only), 'all', or comma-separated names of {list(ABLATIONS)}",
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline rows (ablations only)")
    p.add_argument(
        "--set", "-S", dest="sets", action="append", default=[],
        help="an override for every experiment (key=value, as `dvc exp run -S`); repeatable",
    )  # fmt: skip
    p.add_argument("--jobs", "-j", type=int, default=1, help="experiments run at a time (`dvc queue start -j`)")
    p.add_argument("--poll-seconds", type=float, default=10.0, help="how often `dvc queue status` is asked")
    p.add_argument("--timeout-seconds", type=float, default=24 * 3600, help="give up waiting after this long")
    p.add_argument(
        "--out", required=True,
        help="JSON file the records are appended to (a record replaces one of the same configuration)",
    )  # fmt: skip
    args = p.parse_args(argv)

    try:
        names = ablation_names(args.ablations, baseline=not args.no_baseline)
    except ValueError as exc:
        p.error(str(exc))
    project = Path(args.project).resolve()
    raw = read_raw_params(project / "params.yaml")
    num_generations = len(raw["generations"])

    started = time.perf_counter()
    grid = {}
    for ablation in names:
        overrides = [*ablation_overrides(ablation, raw, num_generations), *args.sets]
        for fraction in args.fractions:
            for seed in args.seeds:
                name = experiment_name(ablation, fraction, seed)
                queue_experiment(project, name, fraction, seed, overrides)
                grid[name] = (ablation, fraction, seed, overrides)
    print(f"queued {len(grid)} experiments in {project}", flush=True)
    run_queue(project, set(grid), args.jobs, args.poll_seconds, args.timeout_seconds)
    wall = time.perf_counter() - started
    print(f"queue done in {wall:.0f} s ({args.jobs} at a time)", flush=True)

    shown = shown_experiments(project)
    failed = [n for n in grid if n not in shown or shown[n]["state"] != "success"]
    out = Path(args.out)
    for name, (ablation, fraction, seed, overrides) in grid.items():
        if name in failed:
            continue
        record = experiment_record(project, shown[name], num_generations)
        record.update(
            fraction=fraction,
            seed=seed,
            num_generations=num_generations,
            ablation=ablation,
            overrides=list(overrides),
            # The grid's wall time shared out: experiments overlap with --jobs > 1.
            seconds=wall / len(grid),
            date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        save_record(out, record)
    records = load_records(out)
    print(markdown_table(records), targets_table(records), sep="\n\n")
    if failed:
        print(f"failed (see `dvc queue logs <name>` in {project}): {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
