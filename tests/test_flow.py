"""The Prefect flow runs the DVC stages: after it, `dvc status` is clean."""

from __future__ import annotations

import json

import pytest

from conftest import copy_project, dvc, make_project, run, tiny_multilabel_params, tiny_params
from flows.stage_output import StageFailedOnInput
from selftrain.gate import best_index, tie_tolerance
from flows.loop import (
    REPORT_STAGE,
    SELECT_BEST_STAGE,
    StageFailed,
    noisy_student_loop,
    run_stage,
    stage_is_current,
    stage_order,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_backend")]


def test_stage_order_walks_generations():
    assert stage_order(2) == [
        "prepare", "train_teacher", "evaluate@0",
        "infer@1", "refine@1", "train_student@1", "evaluate@1",
        "infer@2", "refine@2", "train_student@2", "evaluate@2",
    ]


# An untracked file of the user's, in the project when the flow runs.
JUNK = "notes.txt"


@pytest.fixture(scope="module")
def flow_project(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("flow") / "project", tiny_params())
    (project / JUNK).write_text("not the pipeline's")
    state = noisy_student_loop(project_dir=str(project), return_state=True)
    return project, state.result(), state.state_details.flow_run_id


def test_flow_leaves_dvc_status_clean(flow_project):
    project, _, _ = flow_project
    status = dvc(project, "status", "--json")
    assert json.loads(status.stdout) == {}


def test_flow_returns_a_row_per_generation(flow_project):
    project, result, _ = flow_project
    rows = result["rows"]
    assert [row["generation"] for row in rows] == [0, 1, 2]
    for row in rows:
        metrics = json.loads((project / f"metrics/gen{row['generation']}.json").read_text())
        assert row["test_accuracy"] == metrics["accuracy"]
        assert row["parameters"] == metrics["num_parameters"]
    assert rows[0]["pseudo_kept"] is None
    assert rows[1]["pseudo_kept"] > 0


def test_rerun_of_flow_is_cached(flow_project, tmp_path):
    project = copy_project(flow_project[0], tmp_path / "p")
    stages = stage_order(2) + [SELECT_BEST_STAGE, REPORT_STAGE]
    results = [run_stage.fn(stage, str(project)) for stage in stages]
    assert [r.stage for r in results if r.ran] == []


def test_generations_override_stops_early(tmp_path):
    params = tiny_params()
    params["infer"]["num_shards"] = 2  # the flow fans infer@1 out as two shard tasks
    project = make_project(tmp_path / "p", params)
    assert not stage_is_current("infer@1", str(project))  # so the flow fans the shards out
    state = noisy_student_loop(project_dir=str(project), generations=1, return_state=True)
    result = state.result()
    assert [row["generation"] for row in result["rows"]] == [0, 1]
    # Saved with the produced stages as targets: no outputs of generation 2 exist.
    assert experiments(project) == [result["experiment"]]
    assert shard_task_names(state.state_details.flow_run_id) == ["infer@1 shard 0/2", "infer@1 shard 1/2"]
    # A rerun finds the round recorded and skips the fan-out.
    assert stage_is_current("infer@1", str(project))
    rerun = noisy_student_loop(project_dir=str(project), generations=1, return_state=True)
    assert rerun.result()["rows"] == result["rows"]
    assert shard_task_names(rerun.state_details.flow_run_id) == []
    assert not (project / "models/gen2").exists()
    parts = sorted(p.name for p in (project / "data/gen1/pseudo_labels").iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet"]
    # The run is exactly `dvc repro evaluate@1`: that target is up to date now.
    assert json.loads(dvc(project, "status", "--json", "evaluate@1").stdout) == {}


def shard_task_names(flow_run_id) -> list[str]:
    """Names of the infer shard task runs under one flow run (they run in its subflows), sorted."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

    async def read():
        async with get_client() as client:
            children = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
            )
            if not children:
                return []
            ids = FlowRunFilterId(any_=[child.id for child in children])
            return await client.read_task_runs(flow_run_filter=FlowRunFilter(id=ids))

    return sorted(run.name for run in asyncio.run(read()))


def test_failing_stage_raises_one_line_with_its_output(tmp_path):
    params = tiny_params()
    params["teacher"]["epochs"] = -1  # valid YAML and keys, out of range: our validation's error
    project = make_project(tmp_path / "p", params)
    with pytest.raises(StageFailedOnInput) as failure:
        run_stage.fn("prepare", str(project))
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("stage prepare failed (exit 3, not retried")
    assert "teacher.epochs" in message
    assert message.endswith(f"(full output: {project / 'logs/stages/prepare.log'})")


def run_log(flow_run_id) -> list[str]:
    """Every log message of a flow run and its task runs, oldest first (read from the Prefect API)."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all()
    only = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))

    async def read():
        messages = []
        async with get_client() as client:
            while page := await client.read_logs(log_filter=only, limit=200, offset=len(messages)):
                messages += [log.message for log in page]
        return messages

    return asyncio.run(read())


def test_flow_run_log_holds_every_stage_output_line(flow_project):
    project, _, flow_run_id = flow_project
    log = run_log(flow_run_id)
    for stage in ("prepare", "train_teacher", "train_student@2", "report"):
        assert f"Running stage '{stage}':" in log
    # The training stages' per-epoch lines (tiny params: a 2-epoch teacher, 1-epoch students).
    epochs = [line.split("  ")[0] for line in log if ": epoch " in line]
    assert epochs == [
        "train_teacher: epoch 1/2", "train_teacher: epoch 2/2",
        "train_student@1: epoch 1/1", "train_student@2: epoch 1/1",
    ]


def test_stage_failing_on_its_input_is_not_retried(tmp_path):
    params = tiny_params()
    params["data"].update(source="manifest", manifest="data/raw/missing.csv", subset=0)
    params["loop"].update(retries=2, retry_delay_seconds=0)
    project = make_project(tmp_path / "p", params)
    state = noisy_student_loop(project_dir=str(project), return_state=True)
    assert state.is_failed()
    assert run_log(state.state_details.flow_run_id).count("Running stage 'prepare':") == 1


def test_crashing_stage_is_retried(tmp_path):
    params = tiny_params()
    params["loop"].update(retries=2, retry_delay_seconds=0)
    project = make_project(tmp_path / "p", params)
    (project / "stages/prepare.py").write_text("raise RuntimeError('worker lost')\n")
    state = noisy_student_loop(project_dir=str(project), return_state=True)
    with pytest.raises(StageFailed, match=r"^stage prepare failed \(exit 1\): .*RuntimeError: worker lost \(full output"):
        state.result()
    assert run_log(state.state_details.flow_run_id).count("Running stage 'prepare':") == 3


def test_flow_attaches_round_artifacts(flow_project):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    project, _, flow_run_id = flow_project

    async def read(key):
        # Other tests in this module run flows too: only this run's artifacts.
        only = ArtifactFilter(key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=only)

    import asyncio

    for gen in (1, 2):
        (table,) = asyncio.run(read(f"round-{gen}-class-mix"))
        rows = json.loads(table.data) if isinstance(table.data, str) else table.data
        assert [row["class"] for row in rows] == [str(d) for d in range(10)]
        assert sum(row["kept"] for row in rows) == rows_kept(project, gen)
        (summary,) = asyncio.run(read(f"round-{gen}-summary"))
        assert f"# Round {gen}" in summary.data and "test accuracy" in summary.data


def rows_kept(project, gen):
    import pandas as pd

    return int(pd.read_parquet(project / f"data/gen{gen}/refined.parquet")["kept"].sum())


def test_flow_names_the_best_model_and_saves_an_experiment(flow_project):
    project, result, _ = flow_project
    best = json.loads((project / "models/best.json").read_text())
    assert best["generation"] == result["best_generation"]
    vals = [json.loads((project / f"metrics/gen{g}.json").read_text())["val"]["accuracy"] for g in range(3)]
    assert best["val_accuracy"] == max(vals)
    shown = dvc(project, "exp", "show", "--json").stdout
    assert result["experiment"] in shown
    assert result["experiment"].startswith("run-")
    summary = json.loads((project / "metrics/summary.json").read_text())
    assert summary["best_generation"] == best["generation"]
    assert summary["best_val_accuracy"] == best["val_accuracy"]
    assert summary["test_accuracy"] == {
        str(g): json.loads((project / f"metrics/gen{g}.json").read_text())["accuracy"] for g in range(3)
    }


def experiments(project) -> list[str]:
    """Names of the DVC experiments saved in a project (git refs under refs/exps)."""
    refs = run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=project).stdout.split()
    return sorted(ref.rsplit("/", 1)[1] for ref in refs if "/exec/" not in ref)


def test_experiment_holds_the_pipeline_files_not_untracked_junk(flow_project):
    project, result, _ = flow_project
    (ref,) = [r for r in run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], cwd=project).stdout.split()
              if r.endswith("/" + result["experiment"])]
    files = set(run(["git", "ls-tree", "-r", "--name-only", ref], cwd=project).stdout.split())
    assert {"dvc.lock", "metrics/summary.json", "metrics/gen0.json", "plots/loop/generations.csv"} <= files
    assert JUNK not in files


def test_second_flow_run_with_every_stage_cached_adds_no_experiment(flow_project, tmp_path):
    project = copy_project(flow_project[0], tmp_path / "p")
    before = experiments(project)
    assert before == [flow_project[1]["experiment"]]
    result = noisy_student_loop(project_dir=str(project))
    assert result["experiment"] is None
    assert experiments(project) == before


def test_gate_stops_a_planted_regression(tmp_path):
    params = tiny_params()
    params["teacher"]["epochs"] = 10
    params["student"]["epochs"] = 3
    # Student 1 trains as long as its teacher; student 2 barely trains: it starts
    # from scratch and takes one tiny-step epoch.
    params["generations"] = {
        "1": {"teacher": 0, "width": 8, "depth": 1, "epochs": 10},
        "2": {"teacher": 1, "width": 8, "depth": 1, "epochs": 1, "lr": 1e-6},
        "3": {"teacher": 2, "width": 8, "depth": 1},
    }
    params["evaluate_generations"] = [0, 1, 2, 3]
    params["loop"].update(min_gain=-0.3, patience=1)
    project = make_project(tmp_path / "p", params)
    # Left by an older run that got further: the gate stops before generation 3 is
    # evaluated again, so this must not be named best.
    (project / "metrics").mkdir()
    (project / "metrics/gen3.json").write_text(json.dumps({"accuracy": 1.0, "val": {"accuracy": 1.0}}))
    result = noisy_student_loop(project_dir=str(project))
    vals = [json.loads((project / f"metrics/gen{g}.json").read_text())["val"]["accuracy"] for g in range(3)]
    assert vals[2] < vals[1] - 0.3, vals  # the plant worked
    assert result["stopped_after"] == 2
    assert "generation 2 gained" in result["stop_reason"]
    assert not (project / "models/gen3").exists()
    # The product's rule: the latest generation within one val item of the best.
    size = json.loads((project / "metrics/gen0.json").read_text())["val_size"]
    assert result["best_generation"] == best_index(vals[:2], tie_tolerance(size))
    # select_best depends on every generation in params.yaml: a stopped run does not run it.
    assert not (project / "models/best.json").exists()


def test_multilabel_flow_gates_and_chooses_by_val_map(tmp_path):
    params = tiny_multilabel_params()
    # A student must beat its teacher's val mAP by half a point, else the loop stops.
    params["loop"].update(min_gain=0.005, patience=1)
    project = make_project(tmp_path / "project", params)
    result = noisy_student_loop(project_dir=str(project), return_state=True).result()
    val_map = {
        gen: json.loads((project / f"metrics/gen{gen}.json").read_text())["val_map"]
        for gen in range(len(result["rows"]))
    }
    for row in result["rows"]:
        assert row["val_map"] == val_map[row["generation"]] and row["test_map"] is not None
    assert val_map[result["best_generation"]] == max(val_map.values())
    # The gate compared val mAP: generation 1 either beat the teacher by min_gain or stopped the loop.
    gained = val_map[1] - val_map[0] > 0.005
    assert (result["stopped_after"] is None) == gained, (val_map, result["stop_reason"])
    if not gained:
        assert "val mAP" in result["stop_reason"]
