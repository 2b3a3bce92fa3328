"""The command-line flags the per-seed loop benchmarks (`benchmarks.ood`, `benchmarks.review`) share."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def add_loop_flags(p: argparse.ArgumentParser, seeds_help: str, fraction: float) -> None:
    """--seeds (0 1 2), --generations (2), --fraction, -S overrides, --params and a required --out."""
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help=f"seeds ({seeds_help})")
    p.add_argument("--generations", type=int, default=2, help="student generations 1..N from params.yaml")
    p.add_argument("--fraction", type=float, default=fraction, help="labeled share of the non-test digits")
    p.add_argument("-S", dest="overrides", action="append", default=[], help="KEY=VALUE params override for every run")
    p.add_argument("--params", default=str(ROOT / "params.yaml"), help="params file the runs start from")
    p.add_argument(
        "--out",
        required=True,
        help="JSON file the records are appended to (move it under benchmarks/results/ once BENCHMARKS.md's "
        "table is built from it)",
    )
