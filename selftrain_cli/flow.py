"""`selftrain run` and `selftrain serve`: the Prefect flow over the DVC stages.

Prefect is imported only once the params have passed validation: a bad params.yaml
fails at once instead of after Prefect's temporary server has started.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from selftrain.errors import ConfigError


def add_commands(commands, parents: list[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run", parents=parents, help="run the generation loop as a Prefect flow over DVC stages"
    )
    run.add_argument(
        "--generations",
        type=int,
        default=None,
        help="stop after generation N (default: all in params.yaml); same as `dvc repro evaluate@N`",
    )
    run.set_defaults(handler=run_loop)

    serve = commands.add_parser(
        "serve",
        parents=parents,
        help="serve the loop as a scheduled Prefect deployment (needs `prefect server start`)",
    )
    serve.add_argument("--cron", help='cron schedule, e.g. "0 3 * * 0" (Sundays 03:00)')
    serve.add_argument("--interval", type=float, help="seconds between runs")
    serve.add_argument("--name", default="scheduled-retraining", help="deployment name")
    serve.set_defaults(handler=serve_loop)


def _validated_params(project_dir: str, generations: int | None = None) -> None:
    """Raise ConfigError for a bad params.yaml, --generations or dvc.yaml's per-generation
    deps, without importing Prefect."""
    from flows.plan import check_plan
    from selftrain.config import load_params

    check_plan(project_dir, load_params(Path(project_dir) / "params.yaml"), generations)


# Prefect's temporary server gets 20 s to start by default; on a busy 2-core machine it
# took longer and the run failed before any stage ("Timed out while attempting to connect
# to ephemeral Prefect API server"). A user's own setting wins.
EPHEMERAL_STARTUP_TIMEOUT_SECONDS = "120"


def run_loop(args: argparse.Namespace) -> int:
    _validated_params(args.project_dir, args.generations)
    import pandas as pd

    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_STARTUP_TIMEOUT_SECONDS)
    from flows.loop import noisy_student_loop
    from selftrain.summary import SUMMARY_COLUMNS, format_table

    # A failed stage raises StageFailed (a SelftrainError): main prints its one line.
    result = noisy_student_loop(project_dir=args.project_dir, generations=args.generations)
    # A multilabel run's rows carry its mAP columns too (MULTILABEL_SUMMARY_COLUMNS).
    rows = pd.DataFrame(result["rows"]) if result["rows"] else pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    print(format_table(rows))
    metric = "val mAP" if "val_map" in rows.columns else "val accuracy"
    print(f"best: generation {result['best_generation']} (by {metric} among this run's generations)")
    if result["stop_reason"]:
        print(f"stopped after generation {result['stopped_after']}: {result['stop_reason']}")
    if result["experiment"]:
        print(f"saved as DVC experiment {result['experiment']} (dvc exp show)")
    else:
        print("every stage was cached: no new DVC experiment")
    return 0


def serve_loop(args: argparse.Namespace) -> int:
    if (args.cron is None) == (args.interval is None):
        raise ConfigError("serve needs exactly one of --cron or --interval")
    _validated_params(args.project_dir)
    from flows.loop import noisy_student_loop

    # Blocks, polling the Prefect server for scheduled runs of this deployment.
    # limit=1: one run at a time per server process (a run holds the workspace).
    noisy_student_loop.serve(
        name=args.name,
        cron=args.cron,
        interval=args.interval,
        parameters={"project_dir": str(Path(args.project_dir).resolve())},
        limit=1,
        description="Scheduled noisy-student retraining over the DVC pipeline",
    )
    return 0
