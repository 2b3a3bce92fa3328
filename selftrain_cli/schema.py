"""`selftrain schema`: write params.schema.json, the JSON Schema editors check params.yaml with."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_commands(commands, parents: list[argparse.ArgumentParser]) -> None:
    schema = commands.add_parser(
        "schema", parents=parents, help="write params.schema.json, the JSON Schema editors check params.yaml with"
    )
    schema.add_argument("--out", default="params.schema.json", help="schema file, relative to the project")
    schema.set_defaults(handler=write)


def write(args: argparse.Namespace) -> int:
    from selftrain.schema_file import write_schema

    print(write_schema(Path(args.project_dir) / args.out))
    return 0
