"""Review benchmark: does a person fixing N items a round pay off, and which `--by` queue is worth their time?

A simulated reviewer answers from the canary truth (``truth.parquet``: this benchmark
reads it, the library never does; the loop sees it only as the corrections the reviewer
writes). Per seed, one teacher is trained on the split (2% labels by default) and every
arm starts from a copy of it, so the arms differ only in what is reviewed:

- ``none``: no review, the reference;
- each strategy of ``selftrain.review.names.STRATEGIES``: the product's queue
  (`rank_queue`), top ``--per-round`` items;
- ``random``: as many pool items drawn at random (seeded by seed and round), never one
  already corrected.

Round k of an arm: infer; refine with the corrections so far; rank the refined table
(items already corrected left out, as the product does); the reviewer fills in each
queued item's ``correct_label`` with its true class; the queue is appended to the arm's
``corrections.csv`` by the product's ``review --apply`` (`apply_queue`), read back by
`read_corrections` as refine@k does, and refine reruns with it; then the student trains.
Corrections accumulate over rounds as a team's file does.

``flips`` needs the round before's predictions: in round 1 there are none, so that arm
reviews nothing in round 1 (the product's ``review --by flips`` refuses it too). A
strategy with fewer candidates than ``--per-round`` (e.g. ``rule_disagreement`` when no
rule relabels or drops anything) reviews what it offers; each round records how many
items were reviewed and how many answers changed the teacher's label (the rest the
reviewer confirms).

Example (the issue's run; ``--tiny`` for a minutes-long check)::

    OMP_NUM_THREADS=1 nice -n 19 python -m benchmarks.review --seeds 0 1 2 --generations 2 --out review_records.json
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.accuracy import build_params, next_student, predict_pool
from benchmarks.accuracy_tables import best_by_val, mean_std
from benchmarks.records import load_records, save_record
from benchmarks.loop_flags import add_loop_flags
from selftrain.atomic import write_text
from selftrain.config import Params, read_raw_params
from selftrain.data import Dataset, prepare_digits
from selftrain.evaluate import evaluate_model
from selftrain.refine import RefineContext, parse_refine_config, refine
from selftrain.refine.corrections import read_corrections
from selftrain.review.apply import apply_queue
from selftrain.review.names import QUEUE_COLUMNS, STRATEGIES
from selftrain.review.queue import rank_queue
from selftrain.trainers import train_teacher
from selftrain.truth import TRUTH_COLUMN, TRUTH_FILE, read_truth, with_truth

NONE = "none"
RANDOM = "random"
ARMS = (NONE, *STRATEGIES, RANDOM)
# 800 items: 2% of them still label every class once (300 would leave 5 labels for 10 classes).
TINY = ("data.subset=800", "teacher.epochs=2", "student.epochs=1")


def empty_queue() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series([], dtype=object) for column in QUEUE_COLUMNS})


def random_queue(
    table: pd.DataFrame, class_names: tuple[str, ...], n: int, rng: np.random.Generator, exclude: frozenset[str]
) -> pd.DataFrame:
    """n pool items drawn uniformly from those not in `exclude`, in the product's queue columns."""
    ids = table["item_id"].astype(str).drop_duplicates()
    candidates = np.sort(ids[~ids.isin(exclude)].to_numpy())
    if not len(candidates):
        return empty_queue()
    picked = set(rng.choice(candidates, size=min(n, len(candidates)), replace=False).tolist())
    # rank_queue only formats the drawn rows here (its order among them does not matter).
    queue = rank_queue(table[table["item_id"].astype(str).isin(picked)], class_names, "uncertainty", n)
    return queue.assign(why="drawn at random")


def pick_queue(
    arm: str,
    table: pd.DataFrame,
    class_names: tuple[str, ...],
    n: int,
    previous: pd.Series | None,
    exclude: frozenset[str],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The arm's queue for this round; empty for `none`, and for `flips` without a round before."""
    if arm == NONE or (arm == "flips" and previous is None):
        return empty_queue()
    if arm == RANDOM:
        return random_queue(table, class_names, n, rng, exclude)
    return rank_queue(table, class_names, arm, n, previous, exclude=exclude)


def answer(queue: pd.DataFrame, truth: pd.DataFrame, class_names: tuple[str, ...]) -> tuple[pd.DataFrame, int]:
    """BENCHMARK ONLY: the queue with every `correct_label` set to the item's true class,
    and how many of those answers differ from the queue's predicted label.

    Raises:
        KeyError: a queued item has no truth (the reviewer could not answer it).
    """
    true = dict(zip(truth["item_id"].astype(str), truth[TRUTH_COLUMN]))
    missing = sorted(set(queue["item_id"]) - set(true))
    if missing:
        raise KeyError(f"no canary truth for queued item(s) {missing[:5]}")
    labels = [class_names[int(true[i])] for i in queue["item_id"]]
    answered = queue.assign(correct_label=labels, note="simulated reviewer")
    changed = int((answered["correct_label"] != answered["predicted_label"]).sum())
    return answered, changed


def run_arm(
    arm: str, teacher, header, dataset: Dataset, params: Params, per_round: int, work: Path, log
) -> list[dict]:
    """Generations 1..N from a copy of the seed's teacher, reviewing per `arm`; one entry per round."""
    config = parse_refine_config(params.refine, dataset.class_names, dataset.metadata_columns)
    truth = read_truth(dataset.root / TRUTH_FILE)
    corrections_path = work / "corrections.csv"
    model, previous, entries = copy.deepcopy(teacher), None, []
    for gen in range(1, params.num_generations + 1):
        pseudo_labels = predict_pool(model, header, dataset, params, work, gen)
        context = RefineContext(class_names=dataset.class_names, generation=gen, previous=previous)
        people = read_corrections(corrections_path, dataset.class_names)
        # The queue ranks the round as refine@k left it, without the truth.
        before = refine(pseudo_labels, config, context, people).table
        queue = pick_queue(
            arm, before, dataset.class_names, per_round,
            None if previous is None else previous.drop_duplicates("item_id").set_index("item_id")["pred"],
            frozenset(people.labels), np.random.default_rng([params.seed, gen]),
        )
        answered, changed = answer(queue, truth, dataset.class_names)
        if len(answered):
            queue_path = work / "reviews" / f"gen{gen}" / "queue.csv"
            queue_path.parent.mkdir(parents=True, exist_ok=True)
            write_text(answered.to_csv(index=False), queue_path)
            apply_queue(queue_path, corrections_path, dataset.manifest, dataset.class_names)
            people = read_corrections(corrections_path, dataset.class_names)
        result = refine(with_truth(pseudo_labels, truth), config, context, people)
        previous = pseudo_labels
        refined = result.table.drop(columns=[TRUTH_COLUMN], errors="ignore")
        model, header, _ = next_student(dataset, refined, params, gen, model, header, work)
        metrics, _ = evaluate_model(model, header, dataset, params)
        entries.append(
            {
                "gen": gen,
                "test_accuracy": metrics["accuracy"],
                "val_accuracy": metrics.get("val", {}).get("accuracy"),
                "reviewed": len(answered),
                "changed": changed,
                "corrections": len(people.labels),
                "kept": int(result.table["kept"].sum()),
                "pseudo_accuracy_after": result.report.get("accuracy", {}).get("after"),
            }
        )
        log(f"  {arm} gen {gen}: test {metrics['accuracy']:.4f}, reviewed {len(answered)}, changed {changed}")
    return entries


def run_seed(params: Params, arms: list[str], per_round: int, log) -> list[dict]:
    """One teacher on the seed's split, then every arm from it; a record per arm."""
    with tempfile.TemporaryDirectory(prefix="selftrain-review-") as tmp:
        work = Path(tmp)
        dataset = prepare_digits(work / "prepared", params.data, params.seed)
        teacher, header, _ = train_teacher(dataset, params)
        metrics, _ = evaluate_model(teacher, header, dataset, params)
        log(f"  teacher {metrics['accuracy']:.4f}")
        shared = {
            "teacher": metrics["accuracy"],
            "teacher_val": metrics.get("val", {}).get("accuracy"),
            "val_size": metrics.get("val_size"),
            "labeled_rows": int((dataset.manifest["split"] == "labeled").sum()),
        }
        return [
            {**shared, "arm": arm, "generations": run_arm(arm, teacher, header, dataset, params, per_round, work / arm, log)}
            for arm in arms
        ]


def markdown_table(records: list[dict]) -> str:
    """Per arm: best generation by val (test accuracy, %), its gain over `none` on the same
    seed, and the mean per seed of items reviewed and of answers that changed a label."""
    head = ["review (`--by`)", "seeds", "best-generation test accuracy", "minus none's (paired)", "reviewed", "labels changed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    reference = {r["seed"]: best_by_val(r)[1] for r in records if r["arm"] == NONE}
    for arm in ARMS:
        rows = sorted((r for r in records if r["arm"] == arm), key=lambda r: r["seed"])
        if not rows:
            continue
        best = {r["seed"]: best_by_val(r)[1] for r in rows}
        paired = [best[s] - reference[s] for s in best if s in reference] if arm != NONE else []
        totals = [(sum(g["reviewed"] for g in r["generations"]), sum(g["changed"] for g in r["generations"])) for r in rows]
        cells = [arm, ",".join(str(s) for s in best), mean_std(list(best.values())), mean_std(paired)]
        cells += [f"{statistics.fmean(t[i] for t in totals):.1f}" for i in (0, 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_loop_flags(p, "split, init, random picks", fraction=0.02)
    p.add_argument("--per-round", type=int, default=20, help="items the reviewer answers per round (N)")
    p.add_argument("--strategies", nargs="+", default=list(ARMS), choices=ARMS, help="arms per seed (none = no review)")
    p.add_argument("--tiny", action="store_true", help=f"a quick check: adds the overrides {' '.join(TINY)}")
    args = p.parse_args(argv)
    if args.per_round < 1:
        p.error(f"--per-round: must be at least 1, got {args.per_round}")
    raw = read_raw_params(args.params)
    overrides = (*(TINY if args.tiny else ()), *args.overrides)
    out = Path(args.out)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    for seed in args.seeds:
        params = build_params(raw, args.fraction, seed, args.generations, overrides)
        log(f"seed={seed} arms={args.strategies} overrides={list(overrides)}")
        for record in run_seed(params, args.strategies, args.per_round, log):
            record.update(
                seed=seed, fraction=args.fraction, per_round=args.per_round, num_generations=args.generations,
                overrides=list(overrides), date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            save_record(
                out, record, key=lambda r: (r["arm"], r["seed"], r["fraction"], r["per_round"], r["num_generations"])
            )
    print(markdown_table(load_records(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
