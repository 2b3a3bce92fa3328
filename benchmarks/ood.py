"""OOD benchmark: digits whose unlabeled pool holds 20% images of no digit, with and without refine.ood.

The out-of-distribution images are built from data that ships here, four kinds in
equal shares, each an 8x8 greyscale image in the digits' 0..16 ink range (stored as
the digits are, scaled to 0..255):

- ``photo``: tiles of scikit-learn's two sample photos (`load_sample_images`: a temple
  and a flower), random 32..96 px squares, greyscale, downscaled to 8x8;
- ``inverted``: digits with ink and paper swapped (16 - x);
- ``noise``: uniform noise over 0..16;
- ``blank``: one random grey level over the whole image.

Per seed, runs of the same split and initialisation: ``clean`` (no OOD images, refine.ood
off), ``clean_filtered`` (no OOD images, refine.ood on: what the filter costs a pool that
needs none), ``contaminated`` (refine.ood off) and ``filtered`` (refine.ood on); the filter
is `--score` at the `--quantile` of val's scores. A record per run holds, per generation, the
share of the OOD images kept as pseudo-labels and the test/val accuracy; the table
gives the best generation by val. The loop runs in-process as in `benchmarks.accuracy`
(its helpers); the OOD ids are known here only, never to the library.

Example::

    OMP_NUM_THREADS=1 nice -n 19 python -m benchmarks.ood --seeds 0 1 2 --generations 2 --out ood_records.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.accuracy import build_params, next_student, predict_pool
from benchmarks.accuracy_tables import mean_std
from benchmarks.records import load_records, save_record
from benchmarks.loop_flags import add_loop_flags
from selftrain.config import Params, read_raw_params
from selftrain.data import Dataset, digits_images, load_dataset, prepare_digits
from selftrain.evaluate import evaluate_model
from selftrain.gate import best_index, tie_tolerance
from selftrain.infer import val_prediction_table
from selftrain.prediction import fit_ood_scorer
from selftrain.refine import RefineContext, parse_refine_config, refine
from selftrain.refine.ood_config import resolve_threshold
from selftrain.trainers import train_teacher

KINDS = ("photo", "inverted", "noise", "blank")
VARIANTS = ("clean", "clean_filtered", "contaminated", "filtered")
# The variants that run with refine.ood on, and those whose pool holds the OOD images.
FILTERED = ("clean_filtered", "filtered")
CONTAMINATED = ("contaminated", "filtered")


def ood_images(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """n OOD images (n, 8, 8) uint8 on the digits' scale, and the kind of each (KINDS in turn)."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = [np.asarray(Image.fromarray(p).convert("L")) for p in load_sample_images().images]
    digits, _, _ = digits_images()
    images, kinds = [], []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        if kind == "photo":
            photo = photos[rng.integers(len(photos))]
            side = int(rng.integers(32, 97))
            top, left = (int(rng.integers(0, s - side)) for s in photo.shape)
            tile = Image.fromarray(photo[top : top + side, left : left + side]).resize((8, 8), Image.BILINEAR)
            ink = np.rint(np.asarray(tile, dtype=np.float64) * 16 / 255)  # 0..16, as the digits
        elif kind == "inverted":
            ink = 16 - np.rint(digits[rng.integers(len(digits))].astype(np.float64) * 16 / 255)
        elif kind == "noise":
            ink = rng.integers(0, 17, (8, 8)).astype(np.float64)
        else:
            ink = np.full((8, 8), float(rng.integers(0, 17)))
        images.append(np.clip(np.rint(ink * 255 / 16), 0, 255).astype(np.uint8))
        kinds.append(kind)
    return np.stack(images), kinds


def contaminate(dataset: Dataset, share: float, seed: int) -> tuple[Dataset, list[str]]:
    """Add OOD images to the unlabeled pool so they are `share` of it; return the dataset and their ids.
    They have no truth: the canary accuracy stays that of the digits."""
    pool = int((dataset.manifest["split"] == "unlabeled").sum())
    n = round(pool * share / (1 - share))
    images, kinds = ood_images(n, seed)
    ids = [f"ood-{kind}-{i:05d}" for i, kind in enumerate(kinds)]
    for item_id, image in zip(ids, images):
        Image.fromarray(image, mode="L").save(dataset.root / "images" / f"{item_id}.png")
    rows = pd.DataFrame(
        {
            "item_id": ids,
            "path": [f"images/{i}.png" for i in ids],
            "split": "unlabeled",
            "label": pd.array([pd.NA] * n, dtype="Int64"),
        }
    )
    manifest_path = dataset.root / "manifest.parquet"
    pd.concat([pd.read_parquet(manifest_path), rows], ignore_index=True).to_parquet(manifest_path)
    return load_dataset(manifest_path), ids


def run_variant(params: Params, variant: str, share: float, log) -> dict:
    """Teacher and generations 1..N on the clean or contaminated pool; OOD kept share per round."""
    with tempfile.TemporaryDirectory(prefix="selftrain-ood-") as tmp:
        work = Path(tmp)
        dataset = prepare_digits(work / "prepared", params.data, params.seed)
        ood_ids: list[str] = []
        if variant in CONTAMINATED:
            dataset, ood_ids = contaminate(dataset, share, params.seed)
        config = parse_refine_config(params.refine, dataset.class_names, dataset.metadata_columns)
        model, header, _ = train_teacher(dataset, params)
        metrics, _ = evaluate_model(model, header, dataset, params)
        record = {
            "teacher": metrics["accuracy"],
            "val_size": metrics.get("val_size"),
            "ood_rows": len(ood_ids),
            "generations": [],
        }
        previous = None
        for gen in range(1, params.num_generations + 1):
            # One scorer for the pool and val: a feature score runs the teacher over the labeled rows.
            scorer = fit_ood_scorer(model, dataset, params)
            pseudo_labels = predict_pool(model, header, dataset, params, work, gen, scorer)
            val = None
            if config.ood.enabled:
                val = val_prediction_table(model, dataset, params, header.generation, scorer)
            round_config = dataclasses.replace(config, ood=resolve_threshold(config.ood, val, gen))
            result = refine(pseudo_labels, round_config, RefineContext(dataset.class_names, gen, previous))
            previous = pseudo_labels
            kept_ids = set(result.table.loc[result.table["kept"], "item_id"])
            model, header, _ = next_student(dataset, result.table, params, gen, model, header, work)
            metrics, _ = evaluate_model(model, header, dataset, params)
            entry = {
                "gen": gen,
                "test_accuracy": metrics["accuracy"],
                "val_accuracy": metrics.get("val", {}).get("accuracy"),
                "kept": len(kept_ids),
                "ood_kept_share": len(kept_ids & set(ood_ids)) / len(ood_ids) if ood_ids else None,
                "ood_threshold": round_config.ood.threshold,
            }
            record["generations"].append(entry)
            log(f"  {variant} gen {gen}: test {entry['test_accuracy']:.4f}, OOD kept {entry['ood_kept_share']}")
        return record


def _arm(record: dict) -> tuple:
    """A table row: the variant, and for filtered runs the OOD score and quantile they used
    (clean and contaminated runs do not depend on them)."""
    if record["variant"] not in FILTERED:
        return (record["variant"], "", 0.0)
    return (record["variant"], record["score"], record["quantile"])


def _record_key(record: dict) -> tuple:
    """One record per arm, seed, labeled fraction and OOD share: a rerun replaces its own."""
    return (*_arm(record), record["seed"], record["fraction"], record["share"])


def _best(record: dict) -> dict:
    """The student generation select_best's rule (`gate.best_index`, near-ties to the later)
    names; the OOD share kept is a student round's, so the teacher is not a candidate."""
    generations = record["generations"]
    vals = [g["val_accuracy"] or 0.0 for g in generations]
    return generations[best_index(vals, tie_tolerance(record.get("val_size")))]


def markdown_table(records: list[dict]) -> str:
    """Per variant: seeds, best generation's test accuracy (by val), share of OOD images kept (%)."""
    head = ["pool", "refine.ood", "seeds", "best-generation test accuracy", "OOD kept (best gen)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    arms = sorted({_arm(r) for r in records}, key=lambda arm: (VARIANTS.index(arm[0]), arm[1:]))
    for arm in arms:
        rows = sorted((r for r in records if _arm(r) == arm), key=lambda r: r["seed"])
        best = [_best(r) for r in rows]
        variant = arm[0]
        setting = "off" if variant not in FILTERED else f"{arm[1]}, quantile {arm[2]}"
        cells = [variant, setting, ",".join(str(r["seed"]) for r in rows)]
        cells += [mean_std([b[k] for b in best], places=1) for k in ("test_accuracy", "ood_kept_share")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_loop_flags(p, "split, init, OOD images", fraction=0.05)
    p.add_argument("--share", type=float, default=0.2, help="share of the contaminated pool that is OOD")
    p.add_argument("--score", default="mahalanobis", help="infer.ood_score of the filtered runs")
    p.add_argument("--quantile", type=float, default=0.95, help="refine.ood.quantile of the filtered runs")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS, help="runs per seed")
    p.add_argument("--table-only", action="store_true", help="print the table of --out and run nothing")
    args = p.parse_args(argv)
    if args.table_only:
        print(markdown_table(load_records(Path(args.out))))
        return 0
    raw = read_raw_params(args.params)
    filtered = (f"infer.ood_score={args.score}", "refine.ood.enabled=true", f"refine.ood.quantile={args.quantile}")
    out = Path(args.out)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    for seed in args.seeds:
        for variant in args.variants:
            overrides = (*args.overrides, *(filtered if variant in FILTERED else ("refine.ood.enabled=false",)))
            params = build_params(raw, args.fraction, seed, args.generations, overrides)
            log(f"{variant} seed={seed} overrides={list(overrides)}")
            record = run_variant(params, variant, args.share, log)
            record.update(
                variant=variant, seed=seed, fraction=args.fraction, share=args.share, score=args.score,
                quantile=args.quantile, overrides=list(overrides),
                date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
            save_record(out, record, key=_record_key)
    print(markdown_table(load_records(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
