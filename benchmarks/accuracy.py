"""Accuracy benchmark: teacher, each student generation and a supervised ceiling on digits.

Runs the loop in-process through the library (no DVC, no Prefect: one process start-up
for every configuration), for each label fraction x seed x ablation, and appends one JSON
record per run to `--out`. The markdown table is rendered from that file, so a partial
run still reports what finished (`--table-only` re-renders without training).
`benchmarks.accuracy_grid` runs the same grid through the product's stages as DVC
experiments and writes the same records (its overhead is in BENCHMARKS.md).

An ablation is a list of `-S`-style overrides applied with `selftrain.config.apply_overrides`,
exactly as `dvc exp run -S` would (`benchmarks.ablations`); each table row names them. The
records are kept by `benchmarks.records`, the tables drawn by `benchmarks.accuracy_tables`.

Example (the main rows, then the ablations)::

    nice -n 19 python -m benchmarks.accuracy --fractions 0.05 0.02 --seeds 0 1 2 --generations 3 --ablations none
    nice -n 19 python -m benchmarks.accuracy --fractions 0.02 --seeds 0 1 --generations 2 --ablations all --no-baseline
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.ablations import ABLATIONS, BASELINE, CEILING, SUPERVISED_TEACHER, ablation_names, ablation_overrides
from benchmarks.accuracy_tables import markdown_table, targets_table
from benchmarks.records import ROOT, add_record_flags, load_records, merge_records, save_record
from selftrain.config import Params, apply_overrides, params_from_dict, read_raw_params
from selftrain.data import Dataset, input_size, prepare_digits
from selftrain.evaluate import evaluate_model
from selftrain.infer import infer_pool
from selftrain.models import bare_network, create_model, header_for, save_model
from selftrain.ood import OodScorer
from selftrain.prediction import predict_split
from selftrain.refine import RefineContext, parse_refine_config, refine
from selftrain.train import FitOptions, TrainSet, fit
from selftrain.trainers import train_student, train_teacher
from selftrain.truth import TRUTH_COLUMN, TRUTH_FILE, read_truth, with_truth
from selftrain.augment import resolve_device

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "accuracy.json"


def build_params(
    raw: dict, fraction: float, seed: int, generations: int, overrides: tuple[str, ...]
) -> Params:
    """params.yaml with the run's fraction, seed and generation count, then the ablation."""
    raw = dict(raw)
    raw["seed"] = seed
    raw["data"] = {**raw["data"], "labeled_fraction": fraction}
    # Keep generations 1..N (the generation count is a benchmark flag, not an override).
    raw["generations"] = {str(k): raw["generations"][str(k)] for k in range(1, generations + 1)}
    raw["evaluate_generations"] = list(range(generations + 1))
    # Pin the backend: no GPU here, and `auto` would pick it silently elsewhere.
    raw["augment"] = {**raw["augment"], "device": "cpu"}
    return params_from_dict(apply_overrides(raw, overrides))


def predict_pool(
    model, header, dataset: Dataset, params: Params, work: Path, gen: int, scorer: OodScorer | None = None
) -> pd.DataFrame:
    """The teacher's pseudo-label table for round `gen` (infer_pool's parts, read back);
    `scorer` as `infer_pool`'s (fitted there when not given)."""
    out_dir = work / f"gen{gen}" / "pseudo_labels"
    infer_pool(
        model, dataset, params, header.generation, out_dir, num_shards=params.infer.num_shards, scorer=scorer
    )
    return pd.read_parquet(out_dir)


def next_student(dataset: Dataset, refined: pd.DataFrame, params: Params, gen: int, teacher, teacher_header, work: Path):
    """train_student@gen after `teacher`; with student.init 'teacher' the teacher is saved
    under `work` first and read back from there, as the train_student stage reads it."""
    teacher_dir = None
    if params.student.init == "teacher":
        teacher_dir = work / f"model{gen - 1}"
        save_model(teacher, teacher_header, teacher_dir)
    return train_student(dataset, refined, params, gen, teacher_dir=teacher_dir)


def ceiling_train_set(dataset: Dataset) -> TrainSet:
    """BENCHMARK ONLY: labeled + unlabeled rows with their TRUE labels.

    This is the one place that trains on `true_label`; the library never does. It gives
    the fully supervised ceiling the self-training loop is measured against.
    """
    rows = dataset.manifest[dataset.manifest["split"].isin(["labeled", "unlabeled"])]
    rows = with_truth(rows, read_truth(dataset.root / TRUTH_FILE))
    labels = rows["label"].fillna(rows[TRUTH_COLUMN]).to_numpy(np.int64)
    return TrainSet.from_labels(dataset.resolve(rows["path"]), labels, dataset.num_classes)


def train_ceiling(dataset: Dataset, params: Params) -> float:
    """The last generation's architecture and noise, trained on all non-test labels.

    Same schedule as a student (epochs, lr) and the same total batch size (labeled plus
    pseudo-labelled rows per step), so it sees as many images as the last student.
    """
    gen = params.num_generations
    width, depth = params.model_size(gen)
    cfg = params.student
    model = create_model(width, depth, cfg.dropout, cfg.drop_path, dataset.num_classes)
    options = FitOptions(
        epochs=params.student_epochs(gen),
        lr=params.generations[gen].lr or cfg.lr,
        batch_size=round(cfg.batch_size * (1 + cfg.batch_ratio)),
        image_size=input_size(dataset, params.data),
        seed=params.seed + 1000,
        optim=params.optim,
        augment=params.augment,
        input_noise=cfg.input_noise,
    )
    fit(model, ceiling_train_set(dataset), None, options, resolve_device(params.augment.device), "ceiling")
    metrics, _ = evaluate_model(model, header_for(model, params, dataset, gen), dataset, params)
    return metrics["accuracy"]


def train_supervised_baseline(dataset: Dataset, supervised: Params) -> float:
    """Test accuracy of the supervised-only teacher (params with SUPERVISED_TEACHER) on this split."""
    model, header, _ = train_teacher(dataset, supervised)
    metrics, _ = evaluate_model(model, header, dataset, supervised)
    return metrics["accuracy"]


def calibration_summary(metrics: dict) -> dict:
    """The record's calibration fields of a metrics/gen{k}.json-shaped dict."""
    keys = ("temperature", "ece_before", "ece_after", "ece_floor", "nll_before", "nll_after")
    return {k: metrics["calibration"][k] for k in keys}


def save_test_logits(model, dataset: Dataset, params: Params, path: Path) -> None:
    """BENCHMARK ONLY: the model's raw test logits (N, C), the test labels and its fitted
    temperature, for pooling test rows over seeds (`benchmarks.calibration_pooled`); the
    val split's logits and labels too (`val_logits`, `val_labels`), to refit temperatures."""
    net, temperature = bare_network(model)
    test, val = dataset.rows("test"), dataset.rows("val")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(
        partial,
        logits=predict_split(net, dataset, test, params, logits=True),
        labels=test["label"].to_numpy(np.int64),
        temperature=temperature,
        val_logits=predict_split(net, dataset, val, params, logits=True),
        val_labels=val["label"].to_numpy(np.int64),
    )
    partial.replace(path)


def self_train(dataset: Dataset, params: Params, work: Path, log, logits_to: Path | None = None) -> dict:
    """Teacher and generations 1..N on a prepared `dataset` (`work` holds the pseudo-label
    tables); test and val accuracy of each. With `logits_to`, each model's test and val
    logits go to `{logits_to}_gen{k}.npz` (`save_test_logits`)."""
    refine_config = parse_refine_config(params.refine, dataset.class_names, dataset.metadata_columns)
    started = time.perf_counter()
    model, header, _ = train_teacher(dataset, params)
    metrics, _ = evaluate_model(model, header, dataset, params)
    record = {
        "labeled_rows": int((dataset.manifest["split"] == "labeled").sum()),
        "teacher": metrics["accuracy"],
        "teacher_val": metrics.get("val", {}).get("accuracy"),
        "val_size": metrics.get("val_size"),
        "teacher_calibration": calibration_summary(metrics),
        "generations": [],
    }
    log(f"  teacher {metrics['accuracy']:.4f} ({time.perf_counter() - started:.0f} s)")
    if logits_to is not None:
        save_test_logits(model, dataset, params, logits_to.with_name(f"{logits_to.name}_gen0.npz"))
    previous = None
    # BENCHMARK ONLY: the canary truth goes to refine for its report's accuracy and is
    # dropped from the refined table before the student sees it, as in the refine stage.
    truth = read_truth(dataset.root / TRUTH_FILE)
    for gen in range(1, params.num_generations + 1):
        t0 = time.perf_counter()
        pseudo_labels = predict_pool(model, header, dataset, params, work, gen)
        result = refine(
            with_truth(pseudo_labels, truth),
            refine_config,
            RefineContext(class_names=dataset.class_names, generation=gen, previous=previous),
        )
        previous = pseudo_labels
        refined = result.table.drop(columns=[TRUTH_COLUMN], errors="ignore")
        model, header, _ = next_student(dataset, refined, params, gen, model, header, work)
        metrics, _ = evaluate_model(model, header, dataset, params)
        if logits_to is not None:
            save_test_logits(model, dataset, params, logits_to.with_name(f"{logits_to.name}_gen{gen}.npz"))
        accuracy = result.report.get("accuracy", {})
        record["generations"].append(
            {
                "gen": gen,
                "test_accuracy": metrics["accuracy"],
                "val_accuracy": metrics.get("val", {}).get("accuracy"),
                "kept": int(result.table["kept"].sum()),
                "pseudo_accuracy_before": accuracy.get("before"),
                "pseudo_accuracy_after": accuracy.get("after"),
                "calibration": calibration_summary(metrics),
            }
        )
        log(
            f"  gen {gen}: test {metrics['accuracy']:.4f}, kept {record['generations'][-1]['kept']}"
            f" at {accuracy.get('after', float('nan')):.4f} ({time.perf_counter() - t0:.0f} s)"
        )
    return record


def run_one(
    params: Params, with_ceiling: bool, log, supervised: Params | None = None, logits_to: Path | None = None
) -> dict:
    """Teacher, generations 1..N, (optionally) the supervised-only baseline teacher and the
    ceiling; test accuracy of each (test logits saved as in `self_train`)."""
    with tempfile.TemporaryDirectory(prefix="selftrain-acc-") as tmp:
        work = Path(tmp)
        dataset = prepare_digits(work / "prepared", params.data, params.seed)
        started = time.perf_counter()
        record = self_train(dataset, params, work, log, logits_to)
        if supervised is not None:
            t0 = time.perf_counter()
            record["supervised"] = train_supervised_baseline(dataset, supervised)
            log(f"  supervised-only teacher {record['supervised']:.4f} ({time.perf_counter() - t0:.0f} s)")
        if with_ceiling:
            t0 = time.perf_counter()
            record["ceiling"] = train_ceiling(dataset, params)
            log(f"  ceiling {record['ceiling']:.4f} ({time.perf_counter() - t0:.0f} s)")
        record["seconds"] = time.perf_counter() - started
        return record


def run_ceilings(raw: dict, fractions, seeds, generations: int, out: Path) -> int:
    """Records of the ceiling alone (ablation "ceiling"), for `learner_tables --ceilings`:
    the gap's far end at the current architecture and student schedule."""
    for fraction in fractions:
        for seed in seeds:
            params = build_params(raw, fraction, seed, generations, ())
            with tempfile.TemporaryDirectory(prefix="selftrain-ceiling-") as tmp:
                dataset = prepare_digits(Path(tmp) / "prepared", params.data, params.seed)
                started = time.perf_counter()
                ceiling = train_ceiling(dataset, params)
            print(f"ceiling fraction={fraction} seed={seed}: {ceiling:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
            save_record(
                out,
                {
                    "fraction": fraction,
                    "seed": seed,
                    "num_generations": generations,
                    "ablation": CEILING,
                    "overrides": [],
                    "ceiling": ceiling,
                    "seconds": time.perf_counter() - started,
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                },
            )
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.02], help="labeled share of the non-test pool")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds (split, init, noise)")
    p.add_argument("--generations", type=int, default=3, help="student generations 1..N from params.yaml")
    p.add_argument(
        "--ablations",
        default="none",
        help=f"'none' (baseline only), 'all', or comma-separated names of {list(ABLATIONS)}",
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline rows (ablations only)")
    p.add_argument("--no-ceiling", action="store_true", help="skip the fully supervised ceiling")
    p.add_argument(
        "--supervised",
        action="store_true",
        help="baseline rows also train the supervised-only teacher (the gap's starting point)",
    )
    p.add_argument(
        "--ceiling-only",
        action="store_true",
        help="train only the fully supervised ceiling of each fraction and seed at params' defaults",
    )
    p.add_argument(
        "--logits-dir",
        help="also save every model's raw test and val logits, labels and temperature here "
        "({ablation}_f{fraction}_s{seed}_gen{k}.npz), for benchmarks.calibration_pooled",
    )
    add_record_flags(p, DEFAULT_OUT)
    args = p.parse_args(argv)
    out = Path(args.out)
    merge_records(out, args.merge)
    if args.ceiling_only:
        return run_ceilings(read_raw_params(args.params), args.fractions, args.seeds, args.generations, out)
    if args.table_only:
        print(markdown_table(load_records(out)))
        print()
        print(targets_table(load_records(out)))
        return 0

    try:
        names = ablation_names(args.ablations, baseline=not args.no_baseline)
    except ValueError as exc:
        p.error(str(exc))
    raw = read_raw_params(args.params)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    for ablation in names:
        for fraction in args.fractions:
            for seed in args.seeds:
                overrides = ablation_overrides(ablation, raw, args.generations)
                params = build_params(raw, fraction, seed, args.generations, overrides)
                log(f"{ablation} fraction={fraction} seed={seed} overrides={list(overrides)}")
                record = run_one(
                    params,
                    with_ceiling=ablation == BASELINE and not args.no_ceiling,
                    log=log,
                    supervised=(
                        build_params(raw, fraction, seed, args.generations, SUPERVISED_TEACHER)
                        if ablation == BASELINE and args.supervised else None
                    ),
                    logits_to=(
                        Path(args.logits_dir) / f"{ablation}_f{fraction}_s{seed}" if args.logits_dir else None
                    ),
                )
                record.update(
                    fraction=fraction,
                    seed=seed,
                    num_generations=args.generations,
                    ablation=ablation,
                    overrides=list(overrides),
                    date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                )
                save_record(out, record)
    print(markdown_table(load_records(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
