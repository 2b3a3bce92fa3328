"""What every stage command shares: the params flag, and one clean exit on our errors."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from selftrain.atomic import ArtifactWriteError
from selftrain.errors import EXIT_INPUT_ERROR, SelftrainError


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return p


def run(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Run a stage's main; our own errors print one line, not a traceback, and exit with a
    status that says whether running the stage again can help."""
    try:
        main(argv)
    except ArtifactWriteError as exc:
        # Disk full or a directory not writable yet: may pass when retried.
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except (SelftrainError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_INPUT_ERROR)
