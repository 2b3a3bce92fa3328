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


def review(project, *args: str, check: bool = True):
    return run([sys.executable, "-m", "selftrain_cli", "review", *args], cwd=project, check=check)


@pytest.mark.parametrize("gen, by", [(1, "uncertainty"), (1, "rule_disagreement"), (2, "flips")])
def test_review_queue_of_label_sets_is_written_with_its_page(multilabel_project, gen, by):
    from selftrain.review.names import LABEL_SET_QUEUE_COLUMNS

    review(multilabel_project, "--gen", str(gen), "--by", by, "--top", "5")
    queue = pd.read_csv(multilabel_project / f"reviews/gen{gen}/queue.csv", dtype=str, keep_default_na=False)
    assert list(queue.columns) == list(LABEL_SET_QUEUE_COLUMNS)
    assert len(queue) <= 5 and (queue["correct_labels"] == "").all()
    for cell in queue["predicted_labels"]:
        assert cell == "(none)" or set(cell.split("|")) <= set(CLASSES)
    if by == "uncertainty":
        assert len(queue) == 5
        margins = queue["min_margin"].astype(float).tolist()
        assert margins == sorted(margins)
    if by == "rule_disagreement":
        # Round 1 has no previous round, so only the project's label-set rule can disagree with the teacher.
        assert len(queue) > 0
        for predicted, why in zip(queue["predicted_labels"], queue["why"]):
            assert why.startswith(f"no-1-beside-7 changed {predicted} -> ") and {"1", "7"} <= set(predicted.split("|"))
    page = (multilabel_project / f"reviews/gen{gen}/queue.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(queue)
    assert "<code>correct_labels</code>" in page and "confidence" not in page


def test_review_applies_label_sets_and_refuses_to_promote_into_the_built_in_mosaics(multilabel_project):
    review(multilabel_project, "--gen", "1", "--top", "3")
    queue_path = multilabel_project / "reviews/gen1/queue.csv"
    queue = pd.read_csv(queue_path, dtype=str, keep_default_na=False)
    queue["correct_labels"] = ["1|7", "(none)", "drop"]
    queue.to_csv(queue_path, index=False)
    corrections = multilabel_project / "data/corrections.csv"
    before = corrections.read_text()
    try:
        review(multilabel_project, "--apply", str(queue_path))
        ids = queue["item_id"].tolist()
        assert corrections.read_text() == before + f"{ids[0]},1|7,\n{ids[1]},,\n{ids[2]},drop,\n"
        proc = review(multilabel_project, "--promote", check=False)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert "'digits-mosaic' is built in and has no files to promote labels into" in proc.stderr
    finally:
        corrections.write_text(before)  # the module's project stays as dvc repro left it
