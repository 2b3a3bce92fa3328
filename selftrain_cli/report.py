"""`selftrain report`: the offline HTML report and the loop's plot data."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_commands(commands, parents: list[argparse.ArgumentParser]) -> None:
    report = commands.add_parser("report", parents=parents, help="write the offline HTML report and plot data")
    report.add_argument("--out", default=None, help="report directory (default: reports/)")
    report.add_argument("--plots-out", default=None, help="plot data directory (default: plots/loop/)")
    report.set_defaults(handler=write)


def write(args: argparse.Namespace) -> int:
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
