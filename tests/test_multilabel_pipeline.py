"""`task: multilabel` end to end: a real `dvc repro` of the digits-mosaic default, two generations.

Checks the contract between the stages (the prepared `labels` column, the round tables'
label sets, the refined targets, the metrics' mAP), that select_best chooses by val mAP,
and that `selftrain inspect` and the report read the rounds.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

from selftrain.label_columns import split_labels
from tests.conftest import dvc, make_project, run, tiny_multilabel_params

CLASSES = [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def multilabel_project(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("multilabel") / "project", tiny_multilabel_params())
    proc = dvc(project, "repro")
    (project.parent / "repro.log").write_text(proc.stdout)
    return project


def test_prepared_manifest_holds_label_sets(multilabel_project):
    manifest = pd.read_parquet(multilabel_project / "data/prepared/manifest.parquet")
    labeled = manifest[manifest["split"] != "unlabeled"]
    assert labeled["labels"].notna().all()
    assert manifest.loc[manifest["split"] == "unlabeled", "labels"].isna().all()
    assert all(set(split_labels(cell)) <= set(CLASSES) for cell in labeled["labels"])
    # Mosaics show up to four digits: some labeled image has more than one label.
    assert max(len(split_labels(cell)) for cell in labeled["labels"]) > 1


@pytest.mark.parametrize("gen", [1, 2])
def test_round_tables_hold_label_sets_and_targets(multilabel_project, gen):
    parts = sorted((multilabel_project / f"data/gen{gen}/pseudo_labels").glob("part-*.parquet"))
    pseudo = pd.concat(pd.read_parquet(p) for p in parts)
    for column in ("probs", "pred_labels", "scores", "min_margin", "mean_binary_entropy"):
        assert column in pseudo.columns
    assert "pred" not in pseudo.columns
    probs = np.stack(pseudo["probs"].to_numpy())
    assert probs.shape[1] == len(CLASSES) and ((probs >= 0) & (probs <= 1)).all()
    # Sigmoids, not a softmax: rows do not sum to one.
    assert not np.allclose(probs.sum(axis=1), 1.0)
    refined = pd.read_parquet(multilabel_project / f"data/gen{gen}/refined.parquet")
    kept = refined[refined["kept"]]
    assert len(kept) > 0
    for labels, target in zip(kept["labels"], kept["target"]):
        assert sorted(CLASSES[i] for i, t in enumerate(target) if t > 0.5) == sorted(labels)


@pytest.mark.parametrize("gen", [0, 1, 2])
def test_metrics_report_map(multilabel_project, gen):
    metrics = json.loads((multilabel_project / f"metrics/gen{gen}.json").read_text())
    assert metrics["task"] == "multilabel"
    for key in ("map", "micro_f1", "macro_f1", "exact_match", "val_map"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert set(metrics["per_class"]) == set(CLASSES)


def test_select_best_chooses_by_val_map(multilabel_project):
    val_maps = {
        gen: json.loads((multilabel_project / f"metrics/gen{gen}.json").read_text())["val_map"] for gen in (0, 1, 2)
    }
    best = json.loads((multilabel_project / "models/best.json").read_text())
    assert val_maps[best["generation"]] == max(val_maps.values())


def test_inspect_and_report_read_the_rounds(multilabel_project):
    proc = run([sys.executable, "-m", "selftrain_cli", "inspect", "--gen", "1", "--json"], cwd=multilabel_project)
    tables = json.loads(proc.stdout)
    assert {row["label"] for row in tables["label_counts"]} == set(CLASSES)
    report = multilabel_project / "reports/round1.html"
    assert 'id="cooccurrence-figure"' in report.read_text()
    index = (multilabel_project / "reports/index.html").read_text()
    assert "test mAP and micro-F1 per generation" in index and "val_map is what the gate" in index


def test_refine_dry_run_previews_a_label_set_rule(multilabel_project, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - {name: drop-crowded, when: {labels_count: {op: '>=', value: 3}}, drop: true}\n"
    )
    proc = run(
        [sys.executable, "-m", "selftrain_cli", "refine", "--gen", "1", "--dry-run", "--rules-file", str(rules)],
        cwd=multilabel_project,
    )
    assert "refine (multilabel), generation 1" in proc.stdout
    assert "drop-crowded" in proc.stdout


def test_review_queue_refuses_label_sets_with_one_line(multilabel_project):
    proc = run([sys.executable, "-m", "selftrain_cli", "review", "--gen", "1"], cwd=multilabel_project, check=False)
    assert proc.returncode != 0
    assert "the review queue is multiclass only" in proc.stderr
    assert "Traceback" not in proc.stderr
