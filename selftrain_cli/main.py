"""`selftrain`: the console script. Thin: parse, then call a command group's handler.

  selftrain run                      the Prefect flow over the DVC stages
  selftrain serve --cron "0 3 * * 0" a scheduled deployment of that flow
  selftrain refine --gen K --dry-run try rules on round K; writes nothing
  selftrain inspect --gen K          round K's tables in the terminal
  selftrain report                   the offline HTML report under reports/
  selftrain review --gen K --by flips round K's review queue under reviews/genK/
  selftrain review --apply QUEUE_CSV append a filled-in queue to data/corrections.csv
  selftrain review --promote         corrected items into the labeled set of your data
  selftrain schema                   params.schema.json for editors

`--project-dir DIR` goes before or after the command.
"""

from __future__ import annotations

import argparse
import sys

from selftrain.errors import SelftrainError
from selftrain_cli import flow, inspection, refine, report, review, schema

PROJECT_DIR_HELP = "DVC project holding dvc.yaml and params.yaml (default: the current directory)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="selftrain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project-dir", default=".", help=PROJECT_DIR_HELP)
    # The same flag on every command; SUPPRESS leaves the value given before the
    # command (or its default) in place when it is not repeated after it.
    after_command = argparse.ArgumentParser(add_help=False)
    after_command.add_argument("--project-dir", default=argparse.SUPPRESS, help=PROJECT_DIR_HELP)
    commands = parser.add_subparsers(dest="command", required=True)
    for group in (flow, refine, inspection, report, review, schema):
        group.add_commands(commands, [after_command])
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
