"""One quick learner probe: the teacher alone (or the teacher and N generations) on one
digits split, under `key=value` overrides of params.yaml; prints one JSON line.

The issue-15 decisions (e.g. `augment.strong_cutout`) were taken from such probes before
the multi-seed grid of `benchmarks.accuracy` ran. Example, from the repository root:

    OMP_NUM_THREADS=1 python -m benchmarks.learner_probe --fraction 0.05 --seed 0 augment.strong_cutout=0.5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.accuracy import build_params, run_one
from benchmarks.records import ROOT
from selftrain.config import read_raw_params
from selftrain.data import prepare_digits
from selftrain.evaluate import evaluate_model
from selftrain.trainers import train_teacher


def teacher_only(params) -> dict:
    """Test and val accuracy of generation 0 alone."""
    with tempfile.TemporaryDirectory(prefix="selftrain-probe-") as tmp:
        dataset = prepare_digits(Path(tmp) / "prepared", params.data, params.seed)
        model, header, _ = train_teacher(dataset, params)
        metrics, _ = evaluate_model(model, header, dataset, params)
        return {"teacher": metrics["accuracy"], "teacher_val": metrics.get("val", {}).get("accuracy"), "generations": []}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fraction", type=float, default=0.05, help="labeled share of the non-test pool")
    p.add_argument("--seed", type=int, default=0, help="seed (split, init, noise)")
    p.add_argument("--generations", type=int, default=0, help="student generations after the teacher (0: teacher only)")
    p.add_argument("--params", default=str(ROOT / "params.yaml"), help="params file the probe starts from")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. augment.strong_cutout=0.5")
    args = p.parse_args(argv)
    # build_params keeps generations 1..N; the teacher-only probe needs one to validate.
    params = build_params(
        read_raw_params(args.params), args.fraction, args.seed, max(1, args.generations), tuple(args.overrides)
    )
    started = time.perf_counter()
    record = teacher_only(params) if args.generations == 0 else run_one(params, False, print)
    result = {
        "fraction": args.fraction,
        "seed": args.seed,
        "overrides": args.overrides,
        "teacher": record["teacher"],
        "teacher_val": record["teacher_val"],
        "generations_test": [g["test_accuracy"] for g in record["generations"]],
        "generations_val": [g["val_accuracy"] for g in record["generations"]],
        "seconds": round(time.perf_counter() - started),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
