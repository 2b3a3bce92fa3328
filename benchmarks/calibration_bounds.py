"""How far one temperature can lower a run's test ECE: the bound on issue 15's calibration target.

For each generation of a finished multiclass project (after `make run` or `dvc repro`), the
test ECE (15 bins) with the raw logits, with the model's fitted temperature (what
`metrics/gen{k}.json` reports), with the temperature that minimises the *test* NLL, and the
lowest test ECE any temperature on a grid reaches. The last two look at the test labels, so
they are not a method: they say whether "after scaling <= half of before" is reachable by
temperature scaling at all on that run.

It also gives the ECE estimate's sampling floor on those rows: the mean test ECE that a
perfectly calibrated model with the fitted confidences would read (each row right with
probability equal to its top probability), and how often such a model would read at most
half of "before". ECE in 15 bins over a few hundred rows is biased upwards, so a target
below the floor cannot be told apart from noise by any calibrator.

    python -m benchmarks.calibration_bounds --project . [--out F.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.project_logits import project_logits
from selftrain.calibration import calibrated_ece_readings, expected_calibration_error, fit_temperature, softmax

GRID = np.linspace(0.5, 4.0, 141)
def generation_bounds(logits: np.ndarray, labels: np.ndarray, fitted: float) -> dict:
    """ECE before, after the fitted temperature, after the test-NLL temperature, and the grid minimum."""
    oracle = fit_temperature(logits, labels)
    grid = [expected_calibration_error(softmax(logits, t), labels) for t in GRID]
    best = int(np.argmin(grid))
    ece_before = expected_calibration_error(softmax(logits), labels)
    readings = calibrated_ece_readings(softmax(logits, fitted))
    return {
        "accuracy": float(np.mean(logits.argmax(axis=1) == labels)),
        "ece_before": ece_before,
        "temperature": fitted,
        "ece_after": expected_calibration_error(softmax(logits, fitted), labels),
        "test_nll_temperature": oracle,
        "ece_at_test_nll_temperature": expected_calibration_error(softmax(logits, oracle), labels),
        "min_ece_over_temperatures": grid[best],
        "argmin_temperature": float(GRID[best]),
        "calibrated_ece_floor": float(readings.mean()),
        "calibrated_share_at_most_half": float(np.mean(readings <= ece_before / 2)),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--project", default=".", help="a DVC project whose training and evaluate stages ran")
    p.add_argument("--out", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    project = Path(args.project)
    labels, generations = project_logits(project, ("test",), "calibration_bounds")
    rows = [
        {"generation": g.generation, **generation_bounds(g.logits["test"], labels["test"], g.temperature)}
        for g in generations
    ]
    print(
        "| gen | test acc | ECE before | fitted T | ECE after | half of before | test-NLL T | ECE at it "
        "| min ECE over T (at T) | a calibrated model reads | it reads ≤ half |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['generation']} | {100 * r['accuracy']:.2f} | {100 * r['ece_before']:.2f} | {r['temperature']:.2f} | "
            f"{100 * r['ece_after']:.2f} | {50 * r['ece_before']:.2f} | {r['test_nll_temperature']:.2f} | "
            f"{100 * r['ece_at_test_nll_temperature']:.2f} | {100 * r['min_ece_over_temperatures']:.2f} "
            f"({r['argmin_temperature']:.2f}) | {100 * r['calibrated_ece_floor']:.2f} | "
            f"{100 * r['calibrated_share_at_most_half']:.0f}% |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
