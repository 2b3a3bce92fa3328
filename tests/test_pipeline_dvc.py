"""Integration: the real pipeline under real `dvc repro` in a temporary git repo."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import f1_score

from conftest import copy_project, dvc, ran_stages, write_params
from selftrain.config import load_params
from selftrain.data import load_dataset
from selftrain.models import load_model
from selftrain.prediction import predict_split

pytestmark = pytest.mark.integration

ALL_STAGES = [
    "prepare",
    "train_teacher",
    "evaluate@0",
    "infer@1",
    "refine@1",
    "train_student@1",
    "evaluate@1",
    "infer@2",
    "refine@2",
    "train_student@2",
    "evaluate@2",
    "select_best",
    "report",
]
PSEUDO_COLUMNS = ["item_id", "path", "teacher_gen", "pred", "confidence", "margin", "entropy", "probs"]
REFINED_COLUMNS = PSEUDO_COLUMNS + ["label", "target", "weight", "kept", "rules", "dropped_by"]


def test_first_repro_runs_every_stage(reproduced_project):
    log = (reproduced_project.parent / "first_repro.log").read_text()
    assert sorted(ran_stages(log)) == sorted(ALL_STAGES)


@pytest.mark.parametrize("gen", [1, 2])
def test_round_artifacts_have_contract_columns(reproduced_project, gen):
    pseudo = pd.read_parquet(reproduced_project / f"data/gen{gen}/pseudo_labels")
    refined = pd.read_parquet(reproduced_project / f"data/gen{gen}/refined.parquet")
    manifest = pd.read_parquet(reproduced_project / "data/prepared/manifest.parquet")
    assert list(pseudo.columns[: len(PSEUDO_COLUMNS)]) == PSEUDO_COLUMNS
    assert set(REFINED_COLUMNS) <= set(refined.columns)
    assert len(pseudo) == len(refined) == (manifest["split"] == "unlabeled").sum()
    assert (pseudo["teacher_gen"] == gen - 1).all()
    # Probabilities are distributions; the summary columns agree with them.
    probs = pd.DataFrame(pseudo["probs"].tolist())
    assert probs.sum(axis=1).round(4).eq(1.0).all()
    assert (probs.idxmax(axis=1) == pseudo["pred"]).all()
    assert (probs.max(axis=1) - pseudo["confidence"]).abs().max() < 1e-6
    # Paths stay relative so that artifacts hash the same in every clone.
    assert not pseudo["path"].str.startswith("/").any()
    # The teacher's val predictions sit beside the pool's table, and refine judged the rules on them.
    val = pd.read_parquet(reproduced_project / f"data/gen{gen}/val_predictions.parquet")
    val_rows = manifest[manifest["split"] == "val"]
    assert val["item_id"].tolist() == val_rows["item_id"].tolist()
    assert val["true_label"].tolist() == val_rows["label"].tolist()
    report = json.loads((reproduced_project / f"data/gen{gen}/rules_report.json").read_text())
    assert report["val"]["rows"] == len(val_rows)
    assert all("val_precision" in entry for entry in report["rules"])


@pytest.mark.parametrize("gen", [0, 1, 2])
def test_metrics_are_a_direct_evaluation_of_the_saved_model(reproduced_project, gen, monkeypatch):
    """evaluate@k's numbers are what the model in models/gen{k} scores on the test split."""
    monkeypatch.chdir(reproduced_project)
    params = load_params("params.yaml")
    dataset = load_dataset("data/prepared/manifest.parquet")
    model, _ = load_model(f"models/gen{gen}", dataset.class_names)
    test = dataset.rows("test")
    pred = predict_split(model, dataset, test, params).argmax(axis=1)
    truth = test["label"].to_numpy(np.int64)
    metrics = json.loads(Path(f"metrics/gen{gen}.json").read_text())
    assert metrics["accuracy"] == pytest.approx(float((pred == truth).mean()))
    assert metrics["macro_f1"] == pytest.approx(f1_score(truth, pred, average="macro", labels=range(10), zero_division=0))
    assert sum(c["support"] for c in metrics["per_class"].values()) == len(test)
    assert metrics["num_parameters"] == sum(p.numel() for p in model.parameters())
    # The confusion plot holds the same predictions, one row per test item.
    confusion = pd.read_csv(f"plots/gen{gen}/confusion.csv")
    assert confusion["actual"].astype(str).tolist() == [dataset.class_names[t] for t in truth]
    assert confusion["predicted"].astype(str).tolist() == [dataset.class_names[p] for p in pred]


def test_dvc_lock_hashes_are_the_files_on_disk(reproduced_project):
    lock = yaml.safe_load((reproduced_project / "dvc.lock").read_text())
    checked = 0
    for name, stage in lock["stages"].items():
        for entry in stage.get("deps", []) + stage.get("outs", []):
            path = reproduced_project / entry["path"]
            if path.is_file():
                assert hashlib.md5(path.read_bytes()).hexdigest() == entry["md5"], f"{name}: {entry['path']}"
                checked += 1
    assert checked > 50  # every stage's code deps and file outputs, not a handful


def test_student_is_larger_than_teacher(reproduced_project):
    sizes = [
        json.loads((reproduced_project / f"metrics/gen{g}.json").read_text())["num_parameters"]
        for g in range(3)
    ]
    assert sizes[0] <= sizes[1] <= sizes[2]


def test_second_repro_is_a_noop(reproduced_project, tmp_path):
    project = copy_project(reproduced_project, tmp_path / "p")
    proc = dvc(project, "repro")
    assert ran_stages(proc.stdout) == []
    assert "Data and pipelines are up to date" in proc.stdout


def test_repro_of_one_generation_builds_only_its_upstream(reproduced_project, tmp_path):
    project = copy_project(reproduced_project, tmp_path / "p")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["seed"] = 1  # invalidates everything
    write_params(project, params)
    proc = dvc(project, "repro", "evaluate@1")
    assert sorted(ran_stages(proc.stdout)) == sorted(
        ["prepare", "train_teacher", "infer@1", "refine@1", "train_student@1", "evaluate@1"]
    )


def test_refine_param_reruns_refine_not_infer(reproduced_project, tmp_path):
    project = copy_project(reproduced_project, tmp_path / "p")
    params = yaml.safe_load((project / "params.yaml").read_text())
    # At most half of round 1 is dropped, so its refined table changes and is not empty.
    # Only up to train_student@1: the retrained gen-1 model relabels round 2, which on
    # these 1-epoch models may then fall entirely below the threshold.
    median = pd.read_parquet(project / "data/gen1/pseudo_labels")["confidence"].median()
    params["refine"]["threshold"] = float(median)
    write_params(project, params)
    ran = ran_stages(dvc(project, "repro", "train_student@1").stdout)
    assert "refine@1" in ran and "train_student@1" in ran
    assert "infer@1" not in ran
    assert not {"prepare", "train_teacher", "evaluate@0"} & set(ran)


def test_width_of_generation_2_leaves_generation_1_cached(reproduced_project, tmp_path):
    project = copy_project(reproduced_project, tmp_path / "p")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["generations"]["2"]["width"] = 16
    write_params(project, params)
    ran = ran_stages(dvc(project, "repro").stdout)
    assert sorted(ran) == ["evaluate@2", "report", "select_best", "train_student@2"]


def test_fewer_generations_select_and_report_without_touching_generation_2(reproduced_project, tmp_path):
    """With one generation in params (and dvc.yaml), `dvc repro evaluate@1 select_best report`
    runs nothing of generation 2, and generation 2's files left on disk are not read."""
    project = copy_project(reproduced_project, tmp_path / "p")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["generations"] = {"1": params["generations"]["1"]}
    params["evaluate_generations"] = [0, 1]
    write_params(project, params)
    ran = ran_stages(dvc(project, "repro", "evaluate@1", "select_best", "report").stdout)
    assert sorted(ran) == ["report", "select_best"]
    best = json.loads((project / "models/best.json").read_text())
    assert sorted(best["candidates"]) == ["0", "1"]
    assert not (project / "reports/round2.html").exists()
    assert pd.read_csv(project / "plots/loop/generations.csv")["generation"].tolist() == [0, 1]
    summary = json.loads((project / "metrics/summary.json").read_text())
    assert sorted(summary["test_accuracy"]) == ["0", "1"]


def test_leftover_files_of_an_older_run_are_neither_deps_nor_read(reproduced_project, tmp_path):
    """A generation 3 an older, longer run left behind, with a perfect score."""
    project = copy_project(reproduced_project, tmp_path / "p")
    perfect = json.loads((project / "metrics/gen2.json").read_text())
    perfect.update(accuracy=1.0, generation=3, val={"accuracy": 1.0, "macro_f1": 1.0})
    (project / "metrics/gen3.json").write_text(json.dumps(perfect))
    shutil.copytree(project / "data/gen2", project / "data/gen3")
    assert json.loads(dvc(project, "status", "--json", "select_best", "report").stdout) == {}
    dvc(project, "repro", "--force", "--single-item", "select_best")
    dvc(project, "repro", "--force", "--single-item", "report")
    best = json.loads((project / "models/best.json").read_text())
    assert best["generation"] != 3 and sorted(best["candidates"]) == ["0", "1", "2"]
    assert not (project / "reports/round3.html").exists()
    assert pd.read_csv(project / "plots/loop/generations.csv")["generation"].tolist() == [0, 1, 2]
