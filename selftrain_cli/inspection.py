"""`selftrain inspect`: one round's, two rounds' or one item's tables in the terminal."""

from __future__ import annotations

import argparse
from pathlib import Path

from selftrain.errors import ConfigError


def add_commands(commands, parents: list[argparse.ArgumentParser]) -> None:
    inspect = commands.add_parser("inspect", parents=parents, help="tables of one round, two rounds, or one item")
    inspect.add_argument("--gen", type=int, help="round K")
    inspect.add_argument("--compare", type=int, nargs=2, metavar=("J", "K"), help="two rounds side by side")
    inspect.add_argument("--wide", action="store_true", help="every column (default: the ones that fit 80 columns)")
    inspect.add_argument("--json", action="store_true", help="every table, every column, as JSON on stdout")
    inspect.add_argument("--item", help="one item's history across rounds")
    inspect.add_argument(
        "--data", action="store_true", help="prepare's shift check: pixel statistics and image sides per split"
    )
    inspect.set_defaults(handler=inspect_rounds)


def inspect_rounds(args: argparse.Namespace) -> int:
    from rich.console import Console

    from selftrain.inspection.history import item_history
    from selftrain.inspection.tables import compare_rounds, round_summary
    from selftrain.inspection.terminal import render_summary, render_table, tables_json
    from selftrain.paths import ProjectPaths

    paths = ProjectPaths(Path(args.project_dir))
    if args.data:
        from selftrain.inspection.data_stats import TITLE, read_stats, stats_table

        frame = stats_table(read_stats(paths.prepared_dir))
        if args.json:
            print(tables_json({"data": frame}))
        else:
            render_table(frame, TITLE, Console())
        return 0
    if args.item:
        tables = {f"item {args.item}": item_history(paths, args.item)}
    elif args.compare:
        j, k = args.compare
        tables = compare_rounds(paths, j, k)
    elif args.gen is not None:
        tables = round_summary(paths, args.gen)
    else:
        raise ConfigError("inspect needs --gen K, --compare J K, --item ID or --data")
    if args.json:
        print(tables_json(tables))
    else:
        render_summary(tables, Console(), wide=args.wide)
    return 0
