"""What every stage command shares: the params flag, and one clean exit on our errors."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from selftrain.errors import SelftrainError


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return p


def run(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Run a stage's main; our own errors print one line and exit 1, not a traceback."""
    try:
        main(argv)
    except SelftrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
