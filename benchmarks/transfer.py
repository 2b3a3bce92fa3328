"""Transfer benchmark (issue 16): does a teacher started from another task's model add to
self-training? Digits 5-9 at 2% labels, generation 0 from scratch against generation 0
fine-tuned from a model trained on digits 0-4, each followed by student generations.

What runs, per seed (in-process through the library, as `benchmarks.accuracy`):
- **Source task**: scikit-learn digits of classes 0-4 only (relabelled 0..4, class names
  "0".."4"), split by the seed into test (20%), val (10% of the rest) and labeled (every
  other item: no unlabeled pool). Trained with params.yaml's teacher (resnet-s3, its
  default width/depth, epochs, lr, noise, weight average) except `teacher.unlabeled=none`,
  since the source has no pool. Saved as a selftrain model directory
  (`weights/digits-0-4/` of a temporary project) with `save_model`, as a user would keep a
  previous run's `models/gen0`. The source never sees an item of classes 5-9.
- **Target task**: digits of classes 5-9 only, relabelled 0..4 with class names "5".."9";
  the product's split of that subset (test 20% of it, val 10% of the rest, 2% of the
  non-test pool labeled, the rest the unlabeled pool). Prepared once per seed, so both
  arms see the same split.
- **Arms**: `scratch` is params.yaml as `benchmarks.accuracy` runs it; `transfer` adds
  `teacher.weights=weights/digits-0-4`, read through the product's own loading path
  (`selftrain.trainers.initial_model` -> `selftrain.weights.load_weights`, relative to the
  project directory, which is the working directory while the arm runs), with the default
  `teacher.epochs` (30), i.e. a fine-tune. Each arm then runs N student generations with
  the default student params (`student.init: scratch`).
- **The head**: both tasks have 5 classes, so the classifier keeps its shape and the product's
  loader keeps it too (it replaces the head only when the class count differs, and has no
  switch to re-initialise it otherwise). The transfer teacher therefore fine-tunes the
  source's head, whose class k meant digit k, into digit k+5; nothing re-initialises it.

The table gives each arm's generation 0 and the best generation by val
(`selftrain.gate.best_index`, near-ties to the later one, as `select_best`), test accuracy,
mean ± std over seeds, and the paired transfer - scratch difference. Records go to `--out`
(one per seed and arm, replaced on a rerun); `--table-only` re-renders them.

    OMP_NUM_THREADS=1 nice -n 15 python -m benchmarks.transfer --seeds 0 1 2 --generations 2 --out benchmarks/results/transfer.json
    # a two-minute check of the script (a subset, 6 epochs; fewer keeps no pseudo-labels):
    python -m benchmarks.transfer --seeds 0 --generations 1 --subset 500 --fraction 0.1 --epochs 6 --out /tmp/transfer.json
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmarks.accuracy import build_params, self_train
from benchmarks.accuracy_tables import best_by_val, mean_std
from benchmarks.records import ROOT, add_record_flags, load_records, merge_records, save_record
from selftrain.config import DataConfig, Params, read_raw_params
from selftrain.data import Dataset, assign_splits, digits_images, stratified_subset, write_digits_dataset
from selftrain.evaluate import evaluate_model
from selftrain.models import save_model
from selftrain.params_training import WEIGHTS_DIR
from selftrain.trainers import train_teacher

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "transfer.json"
SOURCE_DIGITS = (0, 1, 2, 3, 4)
TARGET_DIGITS = (5, 6, 7, 8, 9)
# The source model, as `teacher.weights` names it (relative to the project directory).
SOURCE_WEIGHTS = f"{WEIGHTS_DIR}/digits-0-4"
# The source has no unlabeled pool, so its teacher learns from labels alone.
SOURCE_OVERRIDES = ("teacher.unlabeled=none",)
# Any valid share: the source labels every non-test, non-val item anyway (`all_labeled`).
SOURCE_FRACTION = 0.5
ARMS = ("scratch", "transfer")


def class_subset(labels: np.ndarray, digits: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the items whose label is in `digits`, their labels renumbered 0..len-1 in
    the order of `digits`)."""
    index = np.flatnonzero(np.isin(labels, digits))
    renumber = {digit: k for k, digit in enumerate(digits)}
    return index, np.array([renumber[int(label)] for label in labels[index]], dtype=np.int64)


def subset_splits(labels: np.ndarray, config: DataConfig, seed: int, all_labeled: bool) -> np.ndarray:
    """The product's split (`assign_splits`) of the subset; with `all_labeled` every
    non-test, non-val item keeps its label (the source task has no pool)."""
    splits = assign_splits(labels, config, seed)
    if all_labeled:
        splits[splits == "unlabeled"] = "labeled"
    return splits


def prepare_digit_classes(
    out_dir: Path, digits: tuple[int, ...], config: DataConfig, seed: int, all_labeled: bool = False
) -> Dataset:
    """BENCHMARK ONLY: `prepare_digits` restricted to the classes `digits` (the product's
    digits source has no class filter). Same files (PNGs, manifest, truth, class names,
    image size); item ids keep the digits' own index, so two subsets can be compared."""
    images, labels, _ = digits_images()
    index, labels = class_subset(labels, digits)
    keep = stratified_subset(labels, config.subset, seed)
    index, labels = index[keep], labels[keep]
    splits = subset_splits(labels, config, seed, all_labeled)
    return write_digits_dataset(
        out_dir, images[index], labels, index, splits, [str(d) for d in digits], config.image_size
    )


def run_params(
    raw: dict, fraction: float, seed: int, generations: int, extra: tuple[str, ...], epochs: int | None, subset: int
) -> Params:
    """`build_params` plus the arm's overrides and the check mode's epochs and subset."""
    overrides = tuple(extra)
    if epochs is not None:
        overrides += (f"teacher.epochs={epochs}", f"student.epochs={epochs}")
    overrides += (f"data.subset={subset}",)
    return build_params(raw, fraction, seed, generations, overrides)


def train_source(project: Path, params: Params, log) -> dict:
    """Train the source model on digits 0-4 and save it under the project's weights/; its
    own test and val accuracy."""
    started = time.perf_counter()
    dataset = prepare_digit_classes(project / "source", SOURCE_DIGITS, params.data, params.seed, all_labeled=True)
    model, header, _ = train_teacher(dataset, params)
    metrics, _ = evaluate_model(model, header, dataset, params)
    save_model(model, header, project / SOURCE_WEIGHTS)
    record = {
        "source_test": metrics["accuracy"],
        "source_val": metrics.get("val", {}).get("accuracy"),
        "source_labeled_rows": int((dataset.manifest["split"] == "labeled").sum()),
        "source_seconds": time.perf_counter() - started,
    }
    log(f"  source (digits 0-4): test {record['source_test']:.4f} ({record['source_seconds']:.0f} s)")
    return record


def run_seed(raw: dict, seed: int, generations: int, fraction: float, epochs: int | None, subset: int, out: Path, log) -> None:
    """Source model, target split, then both arms; each arm's record is saved as it ends."""
    with tempfile.TemporaryDirectory(prefix="selftrain-transfer-") as tmp, contextlib.chdir(tmp):
        # The working directory is the project: `teacher.weights` resolves against it.
        project = Path(tmp)
        source = train_source(project, run_params(raw, SOURCE_FRACTION, seed, generations, SOURCE_OVERRIDES, epochs, subset), log)
        scratch = run_params(raw, fraction, seed, generations, (), epochs, subset)
        target = prepare_digit_classes(project / "target", TARGET_DIGITS, scratch.data, seed)
        for arm in ARMS:
            extra = (f"teacher.weights={SOURCE_WEIGHTS}",) if arm == "transfer" else ()
            params = run_params(raw, fraction, seed, generations, extra, epochs, subset)
            log(f"{arm} seed={seed} fraction={fraction} generations={generations}")
            started = time.perf_counter()
            record = self_train(target, params, project / arm, log)
            record.update(
                source,
                arm=arm,
                seed=seed,
                fraction=fraction,
                num_generations=generations,
                epochs=epochs,
                subset=subset,
                teacher_weights=params.teacher.weights,
                test_size=int((target.manifest["split"] == "test").sum()),
                seconds=time.perf_counter() - started,
                date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            save_record(out, record, key=record_key)


def record_key(record: dict) -> tuple:
    return record["arm"], record["seed"], record["fraction"], record["num_generations"], record["epochs"], record["subset"]


def markdown_table(records: list[dict]) -> str:
    """Per arm: generation 0 and best generation by val (test accuracy, mean ± std over
    seeds), then the per-seed figures and the paired transfer - scratch differences."""
    by_arm = {arm: {r["seed"]: r for r in records if r["arm"] == arm} for arm in ARMS}
    lines = [
        "| arm | seeds | labels | gen 0 (test) | best gen by val (test) | best − gen 0 |",
        "|---|---|---|---|---|---|",
    ]
    for arm in ARMS:
        rows = [by_arm[arm][s] for s in sorted(by_arm[arm])]
        if not rows:
            continue
        gen0 = [r["teacher"] for r in rows]
        best = [best_by_val(r)[1] for r in rows]
        lines.append(
            f"| {arm} | {','.join(str(r['seed']) for r in rows)} | {rows[0]['labeled_rows']} | {mean_std(gen0)} | "
            f"{mean_std(best)} | {mean_std([b - g for b, g in zip(best, gen0)])} |"
        )
    paired = sorted(set(by_arm["scratch"]) & set(by_arm["transfer"]))
    if paired:
        diff0 = [by_arm["transfer"][s]["teacher"] - by_arm["scratch"][s]["teacher"] for s in paired]
        diffb = [best_by_val(by_arm["transfer"][s])[1] - best_by_val(by_arm["scratch"][s])[1] for s in paired]
        lines.append(
            f"| transfer − scratch (paired) | {','.join(map(str, paired))} | | {mean_std(diff0)} | {mean_std(diffb)} | |"
        )
    lines += [
        "",
        "| seed | arm | source test (digits 0-4) | gen 0 | " + "generations (test) | best gen by val | its test |",
        "|---|---|---|---|---|---|---|",
    ]
    for seed in sorted(set(by_arm["scratch"]) | set(by_arm["transfer"])):
        for arm in ARMS:
            r = by_arm[arm].get(seed)
            if r is None:
                continue
            gen, test = best_by_val(r)
            gens = ", ".join(f"{g['test_accuracy'] * 100:.2f}" for g in r["generations"])
            source = f"{r['source_test'] * 100:.2f}" if arm == "transfer" else "(not used)"
            lines.append(f"| {seed} | {arm} | {source} | {r['teacher'] * 100:.2f} | {gens} | {gen} | {test * 100:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (splits, init, noise)")
    p.add_argument("--generations", type=int, default=2, help="student generations after each teacher")
    p.add_argument("--fraction", type=float, default=0.02, help="labeled share of the target's non-test pool")
    p.add_argument("--epochs", type=int, default=None, help="check mode: teacher, source and student epochs (default: params.yaml's)")
    p.add_argument("--subset", type=int, default=0, help="check mode: a stratified subset of N items per task (0: all)")
    add_record_flags(p, DEFAULT_OUT)
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    merge_records(out, args.merge, key=record_key)
    if not args.table_only:
        raw = read_raw_params(args.params)
        log = lambda msg: print(msg, flush=True)  # noqa: E731
        for seed in args.seeds:
            run_seed(raw, seed, args.generations, args.fraction, args.epochs, args.subset, out, log)
    print(markdown_table(load_records(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
