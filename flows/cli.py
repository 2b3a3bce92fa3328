"""`selftrain`: the console script. Thin: parse, then call a flow or the library.

  selftrain run                      the Prefect flow over the DVC stages
  selftrain serve --cron "0 3 * * 0" a scheduled deployment of that flow
  selftrain refine --gen K --dry-run try rules on round K; writes nothing
  selftrain inspect --gen K          round K's tables in the terminal
  selftrain report                   the offline HTML report under reports/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from selftrain.errors import ConfigError, SelftrainError


def _run(args: argparse.Namespace) -> int:
    # Imported here so that the other commands do not pay for Prefect's start-up.
    import pandas as pd

    from flows.loop import noisy_student_loop
    from selftrain.summary import SUMMARY_COLUMNS, format_table

    result = noisy_student_loop(project_dir=args.project_dir, generations=args.generations)
    print(format_table(pd.DataFrame(result["rows"], columns=list(SUMMARY_COLUMNS))))
    print(f"best: generation {result['best_generation']} (by val accuracy among this run's generations)")
    if result["stop_reason"]:
        print(f"stopped after generation {result['stopped_after']}: {result['stop_reason']}")
    if result["experiment"]:
        print(f"saved as DVC experiment {result['experiment']} (dvc exp show)")
    else:
        print("every stage was cached: no new DVC experiment")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from flows.loop import noisy_student_loop

    if (args.cron is None) == (args.interval is None):
        raise ConfigError("serve needs exactly one of --cron or --interval")
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


def _refine(args: argparse.Namespace) -> int:
    import yaml

    from selftrain.config import apply_overrides, params_from_dict, read_raw_params
    from selftrain.paths import ProjectPaths
    from selftrain.refine import format_report, refine_round

    if not args.dry_run:
        raise ConfigError("selftrain refine only previews (--dry-run); `dvc repro refine@K` writes")
    root = Path(args.project_dir)
    paths = ProjectPaths(root)
    raw = apply_overrides(read_raw_params(root / args.params), args.set)
    if args.rules_file:
        # The file's keys replace those of the refine section (e.g. a new `rules:` list).
        section = yaml.safe_load(Path(args.rules_file).read_text())
        if not isinstance(section, dict):
            raise ConfigError(f"{args.rules_file}: expected a mapping of refine keys")
        raw["refine"] = {**raw.get("refine", {}), **section}
    params = params_from_dict(raw)
    val_predictions = paths.val_predictions(args.gen)
    result = refine_round(
        params, paths.manifest, paths.pseudo_labels(args.gen), paths.pseudo_labels(args.gen - 1), args.gen,
        paths.truth, val_predictions if val_predictions.exists() else None,
    )
    print(format_report(result.report))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from rich.console import Console

    from selftrain.inspection.history import item_history
    from selftrain.inspection.tables import compare_rounds, round_summary
    from selftrain.inspection.terminal import render_summary, tables_json
    from selftrain.paths import ProjectPaths

    paths = ProjectPaths(Path(args.project_dir))
    if args.item:
        tables = {f"item {args.item}": item_history(paths, args.item)}
    elif args.compare:
        j, k = args.compare
        tables = compare_rounds(paths, j, k)
    elif args.gen is not None:
        tables = round_summary(paths, args.gen)
    else:
        raise ConfigError("inspect needs --gen K, --compare J K or --item ID")
    if args.json:
        print(tables_json(tables))
    else:
        render_summary(tables, Console(), wide=args.wide)
    return 0


def _report(args: argparse.Namespace) -> int:
    from selftrain.config import load_params
    from selftrain.paths import ProjectPaths
    from selftrain.report.pages import write_report
    from selftrain.report.plot_data import write_plot_data

    paths = ProjectPaths(Path(args.project_dir))
    # The generations params.yaml defines, as the report stage reads them.
    generations = list(range(load_params(paths.root / "params.yaml").num_generations + 1))
    index = write_report(paths, args.out or paths.reports_dir, generations)
    written = write_plot_data(paths, args.plots_out or paths.loop_plots_dir, generations)
    print(f"report: {index}")
    for path in written:
        print(f"plot data: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="selftrain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project-dir", default=".", help="DVC project holding dvc.yaml and params.yaml")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the generation loop as a Prefect flow over DVC stages")
    run.add_argument(
        "--generations",
        type=int,
        default=None,
        help="stop after generation N (default: all in params.yaml); same as `dvc repro evaluate@N`",
    )
    run.set_defaults(handler=_run)

    serve = commands.add_parser(
        "serve", help="serve the loop as a scheduled Prefect deployment (needs `prefect server start`)"
    )
    serve.add_argument("--cron", help='cron schedule, e.g. "0 3 * * 0" (Sundays 03:00)')
    serve.add_argument("--interval", type=float, help="seconds between runs")
    serve.add_argument("--name", default="scheduled-retraining", help="deployment name")
    serve.set_defaults(handler=_serve)

    refine = commands.add_parser("refine", help="preview round K's refinement: per-rule table, class counts")
    refine.add_argument("--gen", type=int, required=True, help="round K (its pseudo-labels must exist)")
    refine.add_argument("--dry-run", action="store_true", help="print the rules report; write nothing")
    refine.add_argument("--params", default="params.yaml", help="params file, relative to the project")
    refine.add_argument(
        "-S", "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a param for this preview, e.g. -S refine.rules[0].when.value=0.8 (repeatable)",
    )
    refine.add_argument("--rules-file", help="YAML mapping whose keys replace the refine section's")
    refine.set_defaults(handler=_refine)

    inspect = commands.add_parser("inspect", help="tables of one round, two rounds, or one item")
    inspect.add_argument("--gen", type=int, help="round K")
    inspect.add_argument("--compare", type=int, nargs=2, metavar=("J", "K"), help="two rounds side by side")
    inspect.add_argument("--wide", action="store_true", help="every column (default: the ones that fit 80 columns)")
    inspect.add_argument("--json", action="store_true", help="every table, every column, as JSON on stdout")
    inspect.add_argument("--item", help="one item's history across rounds")
    inspect.set_defaults(handler=_inspect)

    report = commands.add_parser("report", help="write the offline HTML report and plot data")
    report.add_argument("--out", default=None, help="report directory (default: reports/)")
    report.add_argument("--plots-out", default=None, help="plot data directory (default: plots/loop/)")
    report.set_defaults(handler=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except SelftrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
