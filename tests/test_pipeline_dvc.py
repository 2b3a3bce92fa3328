"""Integration: the real pipeline under real `dvc repro` in a temporary git repo."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from conftest import copy_project, dvc, ran_stages, write_params

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
def test_metrics_files(reproduced_project, gen):
    metrics = json.loads((reproduced_project / f"metrics/gen{gen}.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert 0.0 <= metrics["macro_f1"] <= 1.0
    assert set(metrics["per_class"]) == {str(d) for d in range(10)}
    assert metrics["num_parameters"] > 0
    assert (reproduced_project / f"models/gen{gen}/model.pt").exists()


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
    # At most half of each round is dropped (neither round ends up empty), and
    # round 1's refined table changes.
    medians = [
        pd.read_parquet(project / f"data/gen{g}/pseudo_labels")["confidence"].median()
        for g in (1, 2)
    ]
    params["refine"]["threshold"] = float(min(medians))
    write_params(project, params)
    ran = ran_stages(dvc(project, "repro").stdout)
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
