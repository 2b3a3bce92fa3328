"""Multilabel benchmark (issue 18): the digits-mosaic loop's mAP per generation, and a co-occurrence rule's effect.

Each run is the product itself: a scratch DVC project (no git) with this repository's
stages and params, `task: multilabel` and `data.source: digits-mosaic`, reproduced by
`dvc repro` end to end. Per seed it records, for the teacher (generation 0) and each
student generation, the test mAP, micro-F1 and exact-match ratio and the val mAP the
gate and select_best decide on; per round, the label precision of the refined sets
against the canary (`rules_report.json` accuracy) and each rule's hits.

- ``--arm loop`` (the default): the loop as params say, with the rules of ``--rules``
  (a YAML list in params' `refine.rules` shape) or none.
- ``--arm ceiling``: generation 0 alone with every non-test mosaic labeled (labeled
  fraction 0.99 - val_fraction: val is drawn from the same pool first, and a few mosaics
  must stay unlabeled for the pool), supervised only (`teacher.unlabeled: none`: the
  teacher's epochs count passes over the pool otherwise, which is nearly empty here), at
  the last student's width and depth, for `CEILING_EPOCHS` passes over its labels.
- ``--inspect``: after the run, print the teacher's co-occurrence errors on the
  unlabeled pool (predicted pairs vs true pairs), from which a rule is written.

Example (the issue's table)::

    OMP_NUM_THREADS=1 nice -n 10 python -m benchmarks.multilabel --seeds 0 1 2 --fraction 0.02 --out ml.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmarks.accuracy_tables import mean_std
from benchmarks.records import load_records, save_record
from selftrain.generation_deps import with_generation_deps
from selftrain.inspection.label_set_tables import set_matrix

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = (
    "selftrain", "stages", "flows", "selftrain_cli", "dvc.yaml", "params.yaml", ".dvcignore", "data/raw",
    "data/corrections.csv", "weights",
)
CLASSES = [str(d) for d in range(10)]
# The ceiling's passes over its ~1400 labeled mosaics (~2700 steps): what the recorded
# ceiling (99.9 test mAP, BENCHMARKS.md "Multilabel") ran with.
CEILING_EPOCHS = 60


def ceiling_fraction(data: dict) -> float:
    """The largest labeled share data params accept: labeled + val just under the whole pool."""
    return round(0.99 - data.get("val_fraction", 0.1), 4)


def project_params(base: dict, seed: int, fraction: float, generations: int, arm: str, rules: list, overrides: dict) -> dict:
    """params.yaml of one run: the repository's, multilabel on digits-mosaic, `generations` students."""
    params = json.loads(json.dumps(base))
    params["seed"] = seed
    params["task"] = "multilabel"
    params["data"].update(source="digits-mosaic", subset=0, image_size="auto")
    params["data"]["mosaic"] = {**params["data"].get("mosaic", {}), "seed": seed}
    params["data"]["labeled_fraction"] = ceiling_fraction(params["data"]) if arm == "ceiling" else fraction
    params["refine"]["rules"] = rules
    params["refine"]["class_thresholds"] = {}
    gens = {str(k): params["generations"][str(k)] for k in range(1, generations + 1)}
    params["generations"] = gens
    if arm == "ceiling":
        last = gens[str(generations)]
        params["teacher"].update(
            unlabeled="none", epochs=CEILING_EPOCHS, width=last["width"], depth=last["depth"]
        )
        # Only evaluate@0 runs; the students must still validate as no smaller than it.
        for gen in gens.values():
            gen.update(width=last["width"], depth=last["depth"])
    params["evaluate_generations"] = list(range(generations + 1))
    for key, value in overrides.items():
        section = params
        *path, last = key.split(".")
        for step in path:
            section = section.setdefault(step, {})
        section[last] = value
    return params


def make_project(dest: Path, params: dict) -> Path:
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dest.joinpath(name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    pipeline = with_generation_deps(yaml.safe_load((ROOT / "dvc.yaml").read_text()), params["evaluate_generations"])
    (dest / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    _run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], dest)
    return dest


def _run(cmd: list[str], cwd: Path, log=None) -> None:
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if log is not None:
        log.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def run_one(params: dict, arm: str, work: Path, log, inspect: bool) -> dict:
    project = make_project(work / "project", params)
    started = time.monotonic()
    target = ["evaluate@0"] if arm == "ceiling" else []
    _run([sys.executable, "-m", "dvc", "repro", *target], project, log)
    record: dict = {"seconds": round(time.monotonic() - started, 1), "generations": []}
    gens = [0] if arm == "ceiling" else params["evaluate_generations"]
    for gen in gens:
        metrics = json.loads((project / f"metrics/gen{gen}.json").read_text())
        entry = {key: metrics.get(key) for key in ("map", "micro_f1", "macro_f1", "exact_match", "val_map")}
        entry["generation"] = gen
        if gen:
            report_path = project / f"data/gen{gen}/rules_report.json"
            report = json.loads(report_path.read_text()) if report_path.exists() else {}
            entry["round"] = _round_record(project, gen, report)
        record["generations"].append(entry)
    if arm != "ceiling":
        best = json.loads((project / "models/best.json").read_text())
        record["best_generation"] = best.get("generation")
    if inspect:
        print(cooccurrence_errors(project, 1), file=log)
    return record


def _round_record(project: Path, gen: int, report: dict) -> dict:
    """Label precision/recall of round `gen`'s kept sets against the canary, and the rule hits."""
    refined = pd.read_parquet(project / f"data/gen{gen}/refined.parquet")
    truth = pd.read_parquet(project / "data/prepared/truth.parquet")
    table = refined.merge(truth[["item_id", "true_labels"]], on="item_id", how="left")
    kept = table["kept"].to_numpy(dtype=bool)
    before, _ = set_matrix(table["pred_labels"].tolist(), CLASSES)
    after, _ = set_matrix(table["labels"].tolist(), CLASSES)
    true, known = set_matrix(table["true_labels"].tolist(), CLASSES)
    rows = kept & known
    out = {
        "kept": int(kept.sum()),
        "rows": int(len(table)),
        "label_precision_before": _precision(before[known], true[known]),
        "label_recall_before": _precision(true[known], before[known]),
        "label_precision_after": _precision(after[rows], true[rows]),
        "label_recall_after": _precision(true[rows], after[rows]),
        "exact_match_before": float((before[known] == true[known]).all(axis=1).mean()) if known.any() else None,
        "exact_match_after": float((after[rows] == true[rows]).all(axis=1).mean()) if rows.any() else None,
    }
    out["rules"] = [
        {k: r.get(k) for k in ("name", "matched", "sets_changed", "dropped", "labels_added", "labels_removed", "precision")}
        for r in report.get("rules", [])
    ]
    return out


def _precision(predicted: np.ndarray, truth: np.ndarray) -> float | None:
    chosen = predicted.sum()
    return float((predicted & truth).sum() / chosen) if chosen else None


def cooccurrence_errors(project: Path, gen: int) -> str:
    """The teacher's predicted label pairs on the pool against the true pairs: where it
    predicts a pair that is not there (a false co-occurrence), and which label of it is wrong."""
    parts = sorted((project / f"data/gen{gen}/pseudo_labels").glob("part-*.parquet"))
    table = pd.concat(pd.read_parquet(p) for p in parts).merge(
        pd.read_parquet(project / "data/prepared/truth.parquet")[["item_id", "true_labels"]], on="item_id"
    )
    pred, _ = set_matrix(table["pred_labels"].tolist(), CLASSES)
    true, _ = set_matrix(table["true_labels"].tolist(), CLASSES)
    lines = ["pair  predicted  true_pair  a_wrong  b_wrong  (teacher's sets on the unlabeled pool)"]
    rows = []
    for a in range(10):
        for b in range(a + 1, 10):
            both = pred[:, a] & pred[:, b]
            n = int(both.sum())
            if n < 5:
                continue
            true_pair = int((both & true[:, a] & true[:, b]).sum())
            rows.append((n - true_pair, a, b, n, true_pair, int((both & ~true[:, a]).sum()), int((both & ~true[:, b]).sum())))
    for wrong, a, b, n, tp, aw, bw in sorted(rows, reverse=True)[:15]:
        lines.append(f"{a},{b}  {n:9d}  {tp:9d}  {aw:7d}  {bw:7d}")
    extra = (pred & ~true).sum(axis=0)
    missed = (~pred & true).sum(axis=0)
    lines.append("false labels per class: " + ", ".join(f"{c}:{int(n)}" for c, n in zip(CLASSES, extra)))
    lines.append("missed labels per class: " + ", ".join(f"{c}:{int(n)}" for c, n in zip(CLASSES, missed)))
    return "\n".join(lines)


def markdown_table(records: list[dict]) -> str:
    """Mean ± std over seeds per (arm, rules, labeled share, overrides) and generation: test
    mAP, micro-F1, exact match, val mAP. The ceiling's labeled share is the one it ran with."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        fraction = record.get("labeled_fraction", record["fraction"])
        key = (record["arm"], record["rules_name"], fraction, ", ".join(record.get("overrides", [])) or "-")
        groups.setdefault(key, []).append(record)
    lines = [
        "| arm | rules | labeled | overrides | gen | seeds | test mAP | micro-F1 | exact match | val mAP | kept label precision |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (arm, rules, fraction, overrides), group in sorted(groups.items()):
        gens = sorted({g["generation"] for r in group for g in r["generations"]})
        for gen in gens:
            entries = [g for r in group for g in r["generations"] if g["generation"] == gen]
            pct = lambda key: mean_std([e.get(key) for e in entries], places=1)  # noqa: E731 (mean_std is in percent)
            precision = mean_std(
                [e["round"]["label_precision_after"] for e in entries if e.get("round")], places=1
            ) if gen else "-"
            lines.append(
                f"| {arm} | {rules} | {fraction} | {overrides} | {gen} | {len(entries)} | {pct('map')} | {pct('micro_f1')} | "
                f"{pct('exact_match')} | {pct('val_map')} | {precision} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--fraction", type=float, default=0.02, help="labeled share of the non-test digits pool")
    p.add_argument("--generations", type=int, default=2)
    p.add_argument("--arm", choices=("loop", "ceiling"), default="loop")
    p.add_argument("--rules", default=None, help="YAML file: a list of refine.rules for every run")
    p.add_argument("-S", dest="overrides", action="append", default=[], help="KEY=VALUE (YAML value) params override")
    p.add_argument("--inspect", action="store_true", help="print the teacher's co-occurrence errors of round 1")
    p.add_argument("--keep", default=None, help="keep each run's project under this directory")
    p.add_argument("--out", default=None, help="JSON records file (appended)")
    p.add_argument("--table-only", action="store_true", help="print the table of --out and stop")
    args = p.parse_args(argv)
    if args.table_only:
        print(markdown_table(load_records(Path(args.out))))
        return 0
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    rules = yaml.safe_load(Path(args.rules).read_text()) if args.rules else []
    overrides = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.overrides)}
    for seed in args.seeds:
        params = project_params(base, seed, args.fraction, args.generations, args.arm, rules, overrides)
        with tempfile.TemporaryDirectory(prefix=f"ml-{args.arm}-{seed}-") as tmp:
            work = Path(args.keep) / f"{args.arm}-{Path(args.rules).stem if args.rules else 'norules'}-{seed}" if args.keep else Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            record = run_one(params, args.arm, work, sys.stdout if args.inspect else open(os.devnull, "w"), args.inspect)
        record.update(
            arm=args.arm,
            seed=seed,
            fraction=args.fraction,
            labeled_fraction=params["data"]["labeled_fraction"],
            rules_name=Path(args.rules).stem if args.rules else "none",
            rules=rules,
            overrides=args.overrides,
            mosaic=params["data"]["mosaic"],
            command=" ".join(["python -m benchmarks.multilabel", *(argv if argv is not None else sys.argv[1:])]),
            finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            load=os.getloadavg(),
        )
        print(json.dumps({k: record[k] for k in ("arm", "seed", "seconds", "generations")}, default=str))
        if args.out:
            save_record(Path(args.out), record, key=lambda r: (r["arm"], r["rules_name"], r["fraction"], r["seed"], tuple(r["overrides"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
