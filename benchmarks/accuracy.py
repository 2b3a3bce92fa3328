"""Accuracy benchmark: teacher, each student generation and a supervised ceiling on digits.

Runs the loop in-process through the library (no DVC, no Prefect: one process start-up
for every configuration), for each label fraction x seed x ablation, and appends one JSON
record per run to `--out`. The markdown table is rendered from that file, so a partial
run still reports what finished (`--table-only` re-renders without training).
`benchmarks.accuracy_grid` runs the same grid through the product's stages as DVC
experiments and writes the same records (its overhead is in BENCHMARKS.md).

An ablation is a list of `-S`-style overrides applied with `selftrain.config.apply_overrides`,
exactly as `dvc exp run -S` would; each table row names them.

Example (the main rows, then the ablations)::

    nice -n 19 python -m benchmarks.accuracy --fractions 0.05 0.02 --seeds 0 1 2 --generations 3 --ablations none
    nice -n 19 python -m benchmarks.accuracy --fractions 0.02 --seeds 0 1 --generations 2 --ablations all --no-baseline
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from selftrain.config import Params, apply_overrides, params_from_dict, read_raw_params
from selftrain.data import Dataset, input_size, prepare_digits
from selftrain.evaluate import evaluate_model
from selftrain.gate import best_index, tie_tolerance
from selftrain.infer import infer_pool
from selftrain.models import create_model, header_for, save_model
from selftrain.ood import OodScorer
from selftrain.refine import RefineContext, parse_refine_config, refine
from selftrain.train import FitOptions, TrainSet, fit
from selftrain.trainers import train_student, train_teacher
from selftrain.truth import TRUTH_COLUMN, TRUTH_FILE, read_truth, with_truth
from selftrain.augment import resolve_device

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "accuracy.json"

# The supervised-only teacher of the earlier releases (labeled rows only, 100 epochs, no
# weight average): the baseline that "share of the gap closed" is measured from.
SUPERVISED_TEACHER = ("teacher.unlabeled=none", "teacher.ema_decay=0", "teacher.epochs=100")
NOISE_INPUT = ("teacher.input_noise=false", "student.input_noise=false")
NOISE_MODEL = ("student.dropout=0", "student.drop_path=0")
# Name -> overrides. "same_size" is filled in per run (it depends on the generation count).
ABLATIONS: dict[str, tuple[str, ...]] = {
    "no_input_noise": NOISE_INPUT,
    "no_dropout_droppath": NOISE_MODEL,
    "hard_labels": ("refine.soft=false",),
    "no_balance": ("refine.balance.enabled=false",),
    "same_size": (),
    "rules_off": ("refine.rules=[]", "refine.class_thresholds={}"),
    "no_noise_at_all": NOISE_INPUT + NOISE_MODEL,
    # The Noisy Student paper's ablation: the same (noised) teacher, an un-noised student.
    "no_student_noise": ("student.input_noise=false",) + NOISE_MODEL,
    # The learner's parts (issue 15), each switched off (or on) against the defaults.
    "unlabeled_off": SUPERVISED_TEACHER,
    "rotation_teacher": ("teacher.unlabeled=rotation",),
    "ema_off": ("teacher.ema_decay=0", "student.ema_decay=0"),
    "calibration_off": ("calibration.enabled=false",),
    "rampup_off": ("student.pseudo_rampup_epochs=0",),
    "finetune_on": ("student.finetune_epochs=5",),
    "student_consistency": ("student.unlabeled=consistency",),
}
BASELINE = "baseline"


def ablation_names(spec: str, baseline: bool) -> list[str]:
    """The configurations `--ablations` names ('none', 'all' or comma-separated), the
    baseline first when `baseline`."""
    if spec == "none":
        names = []
    elif spec == "all":
        names = list(ABLATIONS)
    else:
        names = [n.strip() for n in spec.split(",") if n.strip()]
        unknown = [n for n in names if n not in ABLATIONS]
        if unknown:
            raise ValueError(f"--ablations: unknown {unknown}; choose from {list(ABLATIONS)}")
    return [BASELINE, *names] if baseline else names


def ablation_overrides(name: str, raw: dict, generations: int) -> tuple[str, ...]:
    if name == BASELINE:
        return ()
    if name == "same_size":
        teacher = raw["teacher"]
        return tuple(
            f"generations.{k}.{key}={teacher[key]}"
            for k in range(1, generations + 1)
            for key in ("width", "depth")
        )
    return ABLATIONS[name]


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


def self_train(dataset: Dataset, params: Params, work: Path, log) -> dict:
    """Teacher and generations 1..N on a prepared `dataset` (`work` holds the pseudo-label
    tables); test and val accuracy of each."""
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


def run_one(params: Params, with_ceiling: bool, log, supervised: Params | None = None) -> dict:
    """Teacher, generations 1..N, (optionally) the supervised-only baseline teacher and the
    ceiling; test accuracy of each."""
    with tempfile.TemporaryDirectory(prefix="selftrain-acc-") as tmp:
        work = Path(tmp)
        dataset = prepare_digits(work / "prepared", params.data, params.seed)
        started = time.perf_counter()
        record = self_train(dataset, params, work, log)
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
                    "ablation": "ceiling",
                    "overrides": [],
                    "ceiling": ceiling,
                    "seconds": time.perf_counter() - started,
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                },
            )
    return 0


def command_for(fraction: float, seeds, generations: int, ablation: str) -> str:
    seeds = " ".join(str(s) for s in seeds)
    abl = "none" if ablation == BASELINE else ablation
    return (
        f"OMP_NUM_THREADS=1 nice -n 19 python -m benchmarks.accuracy --fractions {fraction} --seeds {seeds} "
        f"--generations {generations} --ablations {abl}" + ("" if ablation == BASELINE else " --no-baseline")
    )


def mean_std(values: list[float | None], places: int = 2) -> str:
    """Mean ± std in percent of the values that are not None, or "-"."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = statistics.fmean(values) * 100
    std = statistics.stdev(values) * 100 if len(values) > 1 else 0.0
    return f"{mean:.{places}f} ± {std:.{places}f}"


def markdown_table(records: list[dict]) -> str:
    """One row per (fraction, generations, ablation), mean ± std (percent) over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["fraction"], r["num_generations"], r["ablation"]), []).append(r)
    max_gen = max((r["num_generations"] for r in records), default=0)
    head = ["fraction", "ablation (overrides)", "seeds", "teacher"]
    head += [f"gen {k}" for k in range(1, max_gen + 1)]
    head += [f"kept acc gen {k}" for k in range(1, max_gen + 1)]
    head += ["ceiling", "command"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = [BASELINE, *ABLATIONS]
    for key in sorted(groups, key=lambda k: (-k[0], -k[1], order.index(k[2]))):
        rows = sorted(groups[key], key=lambda r: r["seed"])
        fraction, n_gen, ablation = key
        overrides = rows[0]["overrides"]
        label = ablation if not overrides else f"{ablation} (`{' '.join(overrides)}`)"
        cells = [f"{fraction:g} ({rows[0]['labeled_rows']} labels)", label, ",".join(str(r["seed"]) for r in rows)]
        cells.append(mean_std([r["teacher"] for r in rows]))
        for k in range(1, max_gen + 1):
            cells.append(mean_std([r["generations"][k - 1]["test_accuracy"] for r in rows if k <= n_gen]))
        for k in range(1, max_gen + 1):
            cells.append(mean_std([r["generations"][k - 1]["pseudo_accuracy_after"] for r in rows if k <= n_gen]))
        cells.append(mean_std([r.get("ceiling") for r in rows]))
        cells.append(f"`{command_for(fraction, [r['seed'] for r in rows], n_gen, ablation)}`")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def best_by_val(record: dict, upto: int | None = None) -> tuple[int, float]:
    """(generation, test accuracy) that select_best would name: the product's `best_index`
    over the val accuracies of the teacher and generations 1..upto, a near-tie (one val
    item, `tie_tolerance` of the recorded val size) going to the later generation.

    Records written before the teacher's val accuracy (or the val size) was kept leave the
    teacher out (or count only exact ties).
    """
    candidates = [(0, record["teacher_val"], record["teacher"])] if record.get("teacher_val") is not None else []
    candidates += [(g["gen"], g["val_accuracy"], g["test_accuracy"]) for g in record["generations"][:upto]]
    best = best_index([val or 0.0 for _, val, _ in candidates], tie_tolerance(record.get("val_size")))
    gen, _, test = candidates[best]
    return gen, test


def targets_table(records: list[dict]) -> str:
    """Per fraction (baseline rows): best generation by val vs the teacher and the ceiling,
    and per ablation the gain over its own teacher next to the baseline's on the same seeds."""
    lines = [
        "| fraction | seeds | teacher | best gen by val (test acc) | gain (paired) | outside the seed spread? | share of teacher→ceiling gap closed |",
        "|---|---|---|---|---|---|---|",
    ]
    base = [r for r in records if r["ablation"] == BASELINE]
    for fraction in sorted({r["fraction"] for r in base}, reverse=True):
        rows = sorted((r for r in base if r["fraction"] == fraction), key=lambda r: r["seed"])
        teacher = [r["teacher"] for r in rows]
        best = [best_by_val(r)[1] for r in rows]
        gains = [b - t for b, t in zip(best, teacher)]
        closed = [(b - t) / (r["ceiling"] - t) for b, t, r in zip(best, teacher, rows) if r.get("ceiling")]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        # Outside the spread: the intervals mean ± std of teacher and best gen do not overlap.
        outside = statistics.fmean(best) - sd(best) > statistics.fmean(teacher) + sd(teacher)
        every_seed = all(g > 0 for g in gains)
        lines.append(
            f"| {fraction:g} | {','.join(str(r['seed']) for r in rows)} | {mean_std(teacher)} | {mean_std(best)} | "
            f"{mean_std(gains)} | {'yes' if outside else 'no'} (gain > 0 on {'every' if every_seed else 'not every'} seed) | "
            + (f"{statistics.fmean(closed) * 100:.0f}% (per seed: {', '.join(f'{c * 100:.0f}%' for c in closed)}) |" if closed else "- (no ceiling) |")
        )
    ablated = [r for r in records if r["ablation"] != BASELINE]
    if ablated:
        lines += [
            "",
            "| ablation | fraction | seeds | gens | gain of best gen by val over its teacher | baseline's gain (same seeds, first gens) | share of the gain kept | best gen minus the baseline's (paired) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        groups: dict[tuple, list[dict]] = {}
        for r in ablated:
            groups.setdefault((r["ablation"], r["fraction"], r["num_generations"]), []).append(r)
        order = list(ABLATIONS)
        for (name, fraction, n_gen), rows in sorted(groups.items(), key=lambda kv: order.index(kv[0][0])):
            rows.sort(key=lambda r: r["seed"])
            gains = [best_by_val(r)[1] - r["teacher"] for r in rows]
            # The baseline run of each of these seeds, judged on the ablation's first n_gen gens.
            base_of_seed = {
                b["seed"]: b for b in base
                if b["fraction"] == fraction and b["num_generations"] >= n_gen and b["seed"] in {r["seed"] for r in rows}
            }
            base_best = {seed: best_by_val(b, n_gen)[1] for seed, b in base_of_seed.items()}
            base_gains = [base_best[seed] - b["teacher"] for seed, b in base_of_seed.items()]
            # Same seed, ablation's best generation against the baseline's: negative = it hurts.
            versus = [best_by_val(r)[1] - base_best[r["seed"]] for r in rows if r["seed"] in base_best]
            kept = (
                f"{statistics.fmean(gains) / statistics.fmean(base_gains) * 100:.0f}%"
                if base_gains and statistics.fmean(base_gains) > 0 else "-"
            )
            lines.append(
                f"| {name} | {fraction:g} | {','.join(str(r['seed']) for r in rows)} | {n_gen} | {mean_std(gains)} | "
                f"{mean_std(base_gains)} | {kept} | {mean_std(versus)} |"
            )
    return "\n".join(lines)


def load_records(path: Path) -> list[dict]:
    return json.loads(path.read_text()) if path.exists() else []


def _configuration(record: dict) -> tuple:
    return record["fraction"], record["seed"], record["num_generations"], record["ablation"]


def save_record(path: Path, record: dict, key: Callable[[dict], tuple] = _configuration) -> None:
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


def merge_records(out: Path, paths: list[str], key: Callable[[dict], tuple] = _configuration) -> None:
    """Save every record of `paths` into `out`, a record of the same `key` replaced."""
    for path in paths:
        for record in load_records(Path(path)):
            save_record(out, record, key=key)


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
