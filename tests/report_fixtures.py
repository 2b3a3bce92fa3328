"""Synthetic round artifacts for the inspection and report tests.

`build_project` writes what the pipeline would leave after N rounds, in the
layout of `ProjectPaths`: 8x8 grey PNGs, a manifest and the truth file under
`data/prepared/` (paths relative to it), then per round a pseudo-label table, a refined table, a
rules report in the format of `selftrain.refine.report.build_report`, and
metrics for generations 0..N. Everything is seeded, so tests can rely on counts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from selftrain.data import CLASSES_FILE
from selftrain.paths import ProjectPaths
from selftrain.report.pages import write_report
from selftrain.truth import TRUTH_COLUMN, write_truth

CLASS_NAMES = tuple(str(i) for i in range(10))
RELABEL_RULE = "seven-to-one"
DROP_RULE = "threshold"


@dataclass(frozen=True)
class Options:
    """What to leave out, to test graceful degradation."""

    rounds: int = 3
    items: int = 60
    truth: bool = True
    rules_report: bool = True
    # Refined-table columns to omit (e.g. ("rules", "dropped_by")); refined=False writes none.
    refined_without: tuple[str, ...] = ()
    refined: bool = True
    seed: int = 0


def build_project(root: Path, options: Options = Options()) -> ProjectPaths:
    """A project under `root` with `options.rounds` rounds of synthetic artifacts."""
    paths = ProjectPaths(root)
    rng = np.random.default_rng(options.seed)
    truth = np.arange(options.items) % len(CLASS_NAMES)
    item_ids = [f"item-{i:03d}" for i in range(options.items)]
    rel_paths = write_images(paths, item_ids, truth, rng)
    write_classes(paths)
    write_manifest(paths, item_ids, rel_paths)
    if options.truth:
        write_truth(pd.DataFrame({"item_id": item_ids, TRUTH_COLUMN: pd.array(truth, dtype="Int64")}), paths.truth)
    for k in range(1, options.rounds + 1):
        pseudo = synthetic_pseudo_labels(item_ids, rel_paths, truth, k, rng)
        refined, report = synthetic_refine(pseudo, k)
        write_round(
            paths,
            k,
            pseudo,
            refined.drop(columns=list(options.refined_without)) if options.refined else None,
            report if options.rules_report and options.refined else None,
        )
    for gen in range(options.rounds + 1):
        write_metrics(paths, gen, accuracy=round(0.6 + 0.05 * gen, 4), macro_f1=round(0.55 + 0.05 * gen, 4))
    return paths


def write_classes(paths: ProjectPaths, names: Iterable[str] = CLASS_NAMES) -> None:
    paths.prepared_dir.mkdir(parents=True, exist_ok=True)
    (paths.prepared_dir / CLASSES_FILE).write_text(json.dumps(list(names)))


def write_images(
    paths: ProjectPaths, item_ids: list[str], truth: np.ndarray, rng: np.random.Generator
) -> list[str]:
    """One 8x8 grey PNG per item (a bright bar whose row is the class); manifest-relative paths."""
    paths.images_dir.mkdir(parents=True, exist_ok=True)
    rel_paths = []
    for item_id, label in zip(item_ids, truth):
        pixels = rng.integers(0, 60, size=(8, 8), dtype=np.uint8)
        pixels[int(label) % 8, :] = 255
        rel = f"images/{item_id}.png"
        Image.fromarray(pixels, mode="L").save(paths.prepared_dir / rel)
        rel_paths.append(rel)
    return rel_paths


def write_manifest(paths: ProjectPaths, item_ids: list[str], rel_paths: list[str]) -> None:
    manifest = pd.DataFrame(
        {
            "item_id": item_ids,
            "path": rel_paths,
            "split": "unlabeled",
            "label": pd.array([pd.NA] * len(item_ids), dtype="Int64"),
        }
    )
    manifest.to_parquet(paths.manifest, index=False)


def synthetic_pseudo_labels(
    item_ids: list[str],
    rel_paths: list[str],
    truth: np.ndarray,
    k: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The teacher's table of round k: right on ~80% of `truth`, peaked probabilities."""
    n, c = len(item_ids), len(CLASS_NAMES)
    wrong = rng.random(n) < 0.2
    pred = np.where(wrong, (truth + 1 + rng.integers(0, c - 1, n)) % c, truth)
    confidence = rng.uniform(0.3, 0.99, n)
    probs = np.tile(((1 - confidence) / (c - 1))[:, None], (1, c))  # (N, C)
    probs[np.arange(n), pred] = confidence
    second = np.sort(probs, axis=1)[:, -2]
    table = pd.DataFrame(
        {
            "item_id": item_ids,
            "path": rel_paths,
            "teacher_gen": np.full(n, k - 1, dtype=np.int64),
            "pred": pred.astype(np.int64),
            "confidence": confidence,
            "margin": confidence - second,
            "entropy": -(probs * np.log(probs)).sum(axis=1),
            "probs": list(probs),
            "source": np.where(np.arange(n) % 2 == 0, "scan", "photo"),
        }
    )
    return table


def synthetic_refine(pseudo: pd.DataFrame, k: int) -> tuple[pd.DataFrame, dict]:
    """Two rules over the teacher's table: relabel 7 -> 1 below 0.8, then drop below 0.5."""
    pred = pseudo["pred"].to_numpy()
    confidence = pseudo["confidence"].to_numpy()
    relabel = (pred == 7) & (confidence < 0.8)
    labels = np.where(relabel, 1, pred)
    drop = confidence < 0.5
    rules = [
        [RELABEL_RULE] * bool(r) + [DROP_RULE] * bool(d) for r, d in zip(relabel, drop)
    ]
    refined = pseudo.copy()
    label = pd.array(labels, dtype="Int64")
    label[drop] = pd.NA
    refined["label"] = label
    refined["target"] = [None if d else list(p) for p, d in zip(pseudo["probs"], drop)]
    refined["weight"] = np.where(drop, 0.0, 1.0)
    refined["kept"] = ~drop
    refined["copies"] = (~drop).astype(np.int64)
    refined["rules"] = rules
    refined["dropped_by"] = [DROP_RULE if d else None for d in drop]
    return refined, rules_report(k, pred, labels, drop, relabel)


def rules_report(k: int, pred: np.ndarray, labels: np.ndarray, drop: np.ndarray, relabel: np.ndarray) -> dict:
    """A report shaped like `selftrain.refine.report.build_report`'s (without truth accounting)."""
    kept = ~drop

    def per_class(values: np.ndarray) -> dict[str, int]:
        return {name: int(n) for name, n in zip(CLASS_NAMES, np.bincount(values, minlength=len(CLASS_NAMES)))}

    def entry(name: str, matched: int, dropped: int, relabelled: dict) -> dict:
        return {
            "name": name, "kind": "builtin" if name == DROP_RULE else "rule", "enabled": True,
            "matched": matched, "changed": matched, "dropped": dropped, "exempted": 0,
            "relabelled": relabelled, "weighted": 0, "marked_keep": 0, "thresholds_set": 0,
            "duplicated": 0, "copies_added": 0,
        }

    return {
        "generation": k,
        "rows": int(len(pred)),
        "kept": int(kept.sum()),
        "dropped": int(drop.sum()),
        "training_rows": int(kept.sum()),
        "order": [RELABEL_RULE, DROP_RULE],
        "rules": [
            entry(RELABEL_RULE, int(relabel.sum()), 0, {"7->1": int(relabel.sum())} if relabel.any() else {}),
            entry(DROP_RULE, int(drop.sum()), int(drop.sum()), {}),
        ],
        "classes": {
            "before": per_class(pred),
            "after": per_class(labels[kept]),
            "after_copies": per_class(labels[kept]),
        },
    }


def write_round(
    paths: ProjectPaths,
    k: int,
    pseudo: pd.DataFrame,
    refined: pd.DataFrame | None = None,
    report: dict | None = None,
) -> None:
    """Write round k's artifacts; None skips a file."""
    paths.round_dir(k).mkdir(parents=True, exist_ok=True)
    paths.pseudo_labels(k).mkdir(parents=True, exist_ok=True)
    pseudo.to_parquet(paths.pseudo_label_part(k, 0), index=False)
    if refined is not None:
        refined.to_parquet(paths.refined(k), index=False)
    if report is not None:
        paths.rules_report(k).write_text(json.dumps(report))


def write_metrics(paths: ProjectPaths, gen: int, accuracy: float, macro_f1: float) -> None:
    paths.metrics(gen).parent.mkdir(parents=True, exist_ok=True)
    metrics = {
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "per_class": {},
        "num_parameters": 1000 * (gen + 1),
        "width": 8 + 4 * gen,
        "depth": 1,
        "generation": gen,
        "val": {"accuracy": accuracy, "macro_f1": macro_f1},
        "val_size": 10 + gen,
        # evaluate's multiclass calibration: two reliability bins each way.
        "calibration": {
            "temperature": round(1.5 + 0.1 * gen, 2),
            "ece_before": 0.08,
            "ece_after": 0.03,
            "ece_floor": 0.02,
            "nll_before": 0.5,
            "nll_after": 0.4,
            "test_size": 40,
            "reliability_before": [
                {"low": 0.6, "high": 0.7, "count": 10, "confidence": 0.65, "accuracy": 0.5},
                {"low": 0.9, "high": 1.0, "count": 30, "confidence": 0.97, "accuracy": 0.9},
            ],
            "reliability_after": [
                {"low": 0.5, "high": 0.6, "count": 10, "confidence": 0.55, "accuracy": 0.5},
                {"low": 0.8, "high": 0.9, "count": 30, "confidence": 0.88, "accuracy": 0.9},
            ],
        },
    }
    paths.metrics(gen).write_text(json.dumps(metrics))


def tiny_round(paths: ProjectPaths, truth_file: bool = True) -> None:
    """Round 1 of seven hand-made rows whose canary numbers the tests compute by hand.

    The truth goes to the truth file; with `truth_file` False it is a column of both
    tables instead, as rounds written before truth had its own file carry it.

    | item | pred | label | kept | dropped_by | truth |
    | a    | 0    | 0     | yes  |            | 0     |  kept, right
    | b    | 0    | 0     | yes  |            | 1     |  kept, wrong
    | c    | 1    | 1     | yes  |            | 1     |  kept, right
    | d    | 2    | 1     | yes  |            | 1     |  relabelled, right (teacher wrong)
    | e    | 2    | -     | no   | threshold  | 0     |  dropped, teacher wrong
    | f    | 1    | -     | no   | threshold  | 1     |  dropped, teacher right
    | g    | 0    | -     | no   | margin     | -     |  dropped, truth unknown
    """
    write_classes(paths)
    ids = list("abcdefg")
    pred = [0, 0, 1, 2, 2, 1, 0]
    pseudo = pd.DataFrame(
        {
            "item_id": ids,
            "path": [f"images/{i}.png" for i in ids],
            "teacher_gen": 0,
            "pred": pred,
            "confidence": [0.9, 0.8, 0.95, 0.6, 0.4, 0.3, 0.7],
        }
    )
    truth = pd.array([0, 1, 1, 1, 0, 1, None], dtype="Int64")
    if truth_file:
        known = ~truth.isna()
        write_truth(pd.DataFrame({"item_id": ids, TRUTH_COLUMN: truth})[known], paths.truth)
    else:
        pseudo[TRUTH_COLUMN] = truth
    refined = pseudo.copy()
    refined["label"] = pd.array([0, 0, 1, 1, None, None, None], dtype="Int64")
    refined["kept"] = [True, True, True, True, False, False, False]
    refined["copies"] = [1, 1, 1, 1, 0, 0, 0]
    refined["rules"] = [[], [], [], ["two-to-one"], ["threshold"], ["threshold"], ["margin"]]
    refined["dropped_by"] = [None, None, None, None, "threshold", "threshold", "margin"]
    write_round(paths, 1, pseudo, refined)


def tiny_second_round(paths: ProjectPaths) -> None:
    """Round 2 after `tiny_round`: b flips 0 -> 1, e flips 2 -> 0, new item h; no refined table."""
    ids = list("abcdefgh")
    pseudo = pd.DataFrame(
        {
            "item_id": ids,
            "path": [f"images/{i}.png" for i in ids],
            "teacher_gen": 1,
            "pred": [0, 1, 1, 2, 0, 1, 0, 3],
            "confidence": [0.9, 0.8, 0.95, 0.6, 0.4, 0.3, 0.7, 0.5],
        }
    )
    write_round(paths, 2, pseudo)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> ProjectPaths:
    """Three synthetic rounds, built once per test module."""
    return build_project(tmp_path_factory.mktemp("inspection") / "project")


@pytest.fixture()
def tiny(tmp_path) -> ProjectPaths:
    """The hand-made round of `tiny_round`, whose numbers its docstring works out."""
    paths = ProjectPaths(tmp_path / "tiny")
    tiny_round(paths)
    return paths


VOID_TAGS = {"meta", "img", "br", "hr", "link", "input"}


class Page(HTMLParser):
    """A parsed page: tags must nest and close properly; ids, images, links and tiles collected."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.images: list[dict] = []
        self.links: list[str] = []
        self.tiles_by_grid: dict[str, int] = {}
        self.grid_stack: list[str] = []
        self.unavailable: list[str] = []
        self._in_unavailable = False
        self.doctype = ""
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed tags: {self.stack}"

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        classes = (attrs.get("class") or "").split()
        if tag == "img":
            self.images.append(attrs)
        if tag == "a":
            self.links.append(attrs.get("href", ""))
        grids = [g for g in self.grid_stack if g]
        if tag == "figure" and "tile" in classes and grids:
            self.tiles_by_grid[grids[-1]] = self.tiles_by_grid.get(grids[-1], 0) + 1
        if tag == "div" and {"class-grid", "rule-grid", "rank-grid"} & set(classes):
            self.grid_stack.append(attrs["id"])
        elif tag == "div" and self.grid_stack:
            self.grid_stack.append("")  # an inner div: popped with its end tag
        if tag == "p" and "unavailable" in classes:
            self._in_unavailable = True
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag == "div" and self.grid_stack:
            self.grid_stack.pop()
        if tag == "p":
            self._in_unavailable = False

    def handle_data(self, data: str) -> None:
        if self._in_unavailable:
            self.unavailable.append(data)


def section_of(text: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}"[^>]*>(.*?)</section>', text, re.S)
    assert match, f"no section {section_id}"
    return match.group(1)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A 3-round project and its report, written once per test module: (paths, index page)."""
    # 300 items: about 30 per class, so the kept grids hit TILE_CAP.
    paths = build_project(tmp_path_factory.mktemp("report") / "project", Options(rounds=3, items=300))
    index = write_report(paths, paths.root / "reports", range(4))
    return paths, index
