"""`selftrain inspect`: one round's, two rounds' or one item's tables in the terminal."""

from __future__ import annotations

import argparse
from pathlib import Path

from selftrain.errors import ConfigError


def add_commands(commands, parents: list[argparse.ArgumentParser]) -> None:
    inspect = commands.add_parser("inspect", parents=parents, help="tables of one round, two rounds, or one item")
    inspect.add_argument("--gen", type=int, help="round K")
    inspect.add_argument("--compare", type=int, nargs=2, metavar=("J", "K"), help="two rounds side by side")
    inspect.add_argument("--item", help="one item's history across rounds")
    inspect.set_defaults(handler=inspect_rounds)


def inspect_rounds(args: argparse.Namespace) -> int:
    from rich.console import Console

    from selftrain import inspection
    from selftrain.paths import ProjectPaths

    paths = ProjectPaths(Path(args.project_dir))
    console = Console()
    if args.item:
        inspection.render_table(inspection.item_history(paths, args.item), f"item {args.item}", console)
    elif args.compare:
        j, k = args.compare
        inspection.render_summary(inspection.compare_rounds(paths, j, k), console)
    elif args.gen is not None:
        inspection.render_summary(inspection.round_summary(paths, args.gen), console)
    else:
        raise ConfigError("inspect needs --gen K, --compare J K or --item ID")
    return 0
