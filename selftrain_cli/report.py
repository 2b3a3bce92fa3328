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
    from selftrain.paths import ProjectPaths
    from selftrain.report import write_plot_data, write_report

    paths = ProjectPaths(Path(args.project_dir))
    index = write_report(paths, args.out or paths.reports_dir)
    written = write_plot_data(paths, args.plots_out or paths.loop_plots_dir)
    print(f"report: {index}")
    for path in written:
        print(f"plot data: {path}")
    return 0
