"""The benchmarks' run records: one JSON list per results file, a record per run, a later
record of the same configuration replacing the earlier one; written to a temporary file and
renamed into place, so an interrupted benchmark keeps every run that finished."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent


def load_records(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


def record_configuration(record: dict) -> tuple:
    return record["fraction"], record["seed"], record["num_generations"], record["ablation"]


def save_record(path: Path, record: dict, key: Callable[[dict], tuple] = record_configuration) -> None:
    """Append one run, replacing an earlier record of the same configuration (`key`)."""
    records = [r for r in load_records(path) if key(r) != key(record)] + [record]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(records, indent=1))
    tmp.replace(path)


def add_record_flags(p: argparse.ArgumentParser, default_out: Path) -> None:
    """--params, --out, --table-only and --merge: the record-keeping flags of the benchmarks
    that write records in this module's format."""
    p.add_argument("--params", default=str(ROOT / "params.yaml"), help="params file the runs start from")
    p.add_argument("--out", default=str(default_out), help="JSON file the records are appended to")
    p.add_argument("--table-only", action="store_true", help="print the table of --out and train nothing")
    p.add_argument(
        "--merge",
        nargs="+",
        default=[],
        help="with --table-only: first merge the records of these JSON files (e.g. one per seed stream) "
        "into --out (later files win)",
    )


def merge_records(out: Path, paths: list[str], key: Callable[[dict], tuple] = record_configuration) -> None:
    """Save every record of `paths` into `out`, a record of the same `key` replaced."""
    for path in paths:
        for record in load_records(Path(path)):
            save_record(out, record, key=key)
