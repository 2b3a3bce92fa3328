"""The temperature fitted on a val split of a few items: how good is it, with and without a prior.

Issue 15, part 8: with 100 labels and `val_fraction: 0.1`, val holds 10 images and the
temperature is fitted on them. For each generation of a finished multiclass project (after
`make run` or `dvc repro`), this draws val subsets of a few sizes from the project's val split,
fits the temperature on each subset with no prior and with a normal prior on log T of each
given standard deviation (`selftrain.calibration.fit_temperature(prior_std=...)`), and scores
each fitted temperature by the test NLL it gives (the proper score the temperature minimises;
ECE over a few hundred test rows is mostly noise, see `benchmarks/calibration_bounds.py`).
References: T = 1 (no calibration) and T fitted on the whole val split.

    python -m benchmarks.temperature_small_val --project . [--sizes 10 25 50] [--draws 200] [--out F.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.project_logits import project_logits
from selftrain.calibration import fit_temperature, nll

NO_PRIOR = "none"


def prior_label(std: float | None) -> str:
    return NO_PRIOR if std is None else f"{std:g}"


def subset_rows(
    val_logits: np.ndarray,
    val_labels: np.ndarray,
    test_logits: np.ndarray,
    test_labels: np.ndarray,
    size: int,
    draws: int,
    prior_stds: list[float | None],
    seed: int = 0,
) -> dict:
    """Per prior: the mean test NLL of the temperatures fitted on `draws` val subsets of
    `size` rows, their median temperature, and the share of draws whose test NLL is above
    T = 1's (calibration made it worse)."""
    rng = np.random.default_rng(seed)
    nll_uncalibrated = nll(test_logits, test_labels)
    if size >= len(val_labels):  # the whole val split: one fit, the product's own
        draws = 1
    picks = [rng.choice(len(val_labels), size=size, replace=False) for _ in range(draws)]
    out = {}
    for std in prior_stds:
        temperatures = np.array([fit_temperature(val_logits[p], val_labels[p], prior_std=std) for p in picks])
        test_nlls = np.array([nll(test_logits, test_labels, t) for t in temperatures])
        out[prior_label(std)] = {
            "test_nll_mean": float(test_nlls.mean()),
            "test_nll_worst_decile": float(np.quantile(test_nlls, 0.9)),
            "temperature_median": float(np.median(temperatures)),
            "share_worse_than_uncalibrated": float(np.mean(test_nlls > nll_uncalibrated)),
        }
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--project", default=".", help="a DVC project whose training stages ran")
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 25, 50], help="val subset sizes")
    p.add_argument("--draws", type=int, default=200, help="val subsets per size")
    p.add_argument(
        "--prior-stds", nargs="+", default=[NO_PRIOR, "1", "0.5", "0.25"],
        help="standard deviations of the prior on log T ('none': no prior)",
    )
    p.add_argument("--out", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    stds = [None if s == NO_PRIOR else float(s) for s in args.prior_stds]
    project = Path(args.project)
    labels, generations = project_logits(project, ("val", "test"), "temperature_small_val")
    val_labels, test_labels = labels["val"], labels["test"]
    if any(size > len(val_labels) for size in args.sizes):
        raise SystemExit(f"temperature_small_val: --sizes above the val split's {len(val_labels)} rows")
    # A size equal to the val split's is the product's own fit (one draw).
    rows = []
    for g in generations:
        val_logits, test_logits = g.logits["val"], g.logits["test"]
        full = fit_temperature(val_logits, val_labels)
        reference = {
            "generation": g.generation,
            "val_size": len(val_labels),
            "test_nll_uncalibrated": nll(test_logits, test_labels),
            "temperature_full_val": full,
            "test_nll_full_val": nll(test_logits, test_labels, full),
        }
        for size in args.sizes:
            by_prior = subset_rows(
                val_logits, val_labels, test_logits, test_labels, size, args.draws, stds, seed=g.generation
            )
            rows.append({**reference, "size": size, "priors": by_prior})
    labels = [prior_label(s) for s in stds]
    print(
        "| gen | val subset | test NLL, T = 1 | T on all val (NLL) | "
        + " | ".join(f"prior {label}: mean NLL (worse than T = 1)" for label in labels)
        + " |"
    )
    print("|---|---|---|---|" + "---|" * len(labels))
    for r in rows:
        cells = [
            f"{r['priors'][label]['test_nll_mean']:.3f} ({100 * r['priors'][label]['share_worse_than_uncalibrated']:.0f}%)"
            for label in labels
        ]
        print(
            f"| {r['generation']} | {r['size']} of {r['val_size']} | {r['test_nll_uncalibrated']:.3f} | "
            f"{r['temperature_full_val']:.2f} ({r['test_nll_full_val']:.3f}) | " + " | ".join(cells) + " |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"project": str(project), "draws": args.draws, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
