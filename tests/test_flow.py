"""The Prefect flow runs the DVC stages: after it, `dvc status` is clean."""

from __future__ import annotations

import json

import pytest
from prefect.testing.utilities import prefect_test_harness

from conftest import copy_project, dvc, make_project, tiny_params
from flows.loop import StageFailed, noisy_student_loop, run_stage, stage_order

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def prefect_backend(tmp_path_factory):
    # An isolated PREFECT_HOME and a temporary local server for this module's flow runs.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect_home")))
        with prefect_test_harness(server_startup_timeout=120):
            yield


def test_stage_order_walks_generations():
    assert stage_order(2) == [
        "prepare", "train_teacher", "evaluate@0",
        "infer@1", "refine@1", "train_student@1", "evaluate@1",
        "infer@2", "refine@2", "train_student@2", "evaluate@2",
    ]


@pytest.fixture(scope="module")
def flow_project(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("flow") / "project", tiny_params())
    rows = noisy_student_loop(project_dir=str(project))
    return project, rows


def test_flow_leaves_dvc_status_clean(flow_project):
    project, _ = flow_project
    status = dvc(project, "status", "--json")
    assert json.loads(status.stdout) == {}


def test_flow_returns_a_row_per_generation(flow_project):
    project, rows = flow_project
    assert [row["generation"] for row in rows] == [0, 1, 2]
    for row in rows:
        metrics = json.loads((project / f"metrics/gen{row['generation']}.json").read_text())
        assert row["test_accuracy"] == metrics["accuracy"]
        assert row["parameters"] == metrics["num_parameters"]
    assert rows[0]["pseudo_kept"] is None
    assert rows[1]["pseudo_kept"] > 0


def test_rerun_of_flow_is_cached(flow_project, tmp_path):
    project = copy_project(flow_project[0], tmp_path / "p")
    results = [run_stage.fn(stage, str(project)) for stage in stage_order(2)]
    assert [r.stage for r in results if r.ran] == []


def test_generations_override_stops_early(tmp_path):
    project = make_project(tmp_path / "p", tiny_params())
    rows = noisy_student_loop(project_dir=str(project), generations=1)
    assert [row["generation"] for row in rows] == [0, 1]
    assert not (project / "models/gen2").exists()
    # The run is exactly `dvc repro evaluate@1`: that target is up to date now.
    assert json.loads(dvc(project, "status", "--json", "evaluate@1").stdout) == {}


def test_failing_stage_raises_with_its_output(tmp_path):
    params = tiny_params()
    params["teacher"]["epochs"] = -1  # valid YAML and keys, out of range: our validation's error
    project = make_project(tmp_path / "p", params)
    with pytest.raises(StageFailed, match=r"dvc repro prepare failed[\s\S]*teacher.epochs"):
        run_stage.fn("prepare", str(project))


def test_flow_attaches_round_artifacts(flow_project):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read(key):
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))

    import asyncio

    for gen in (1, 2):
        (table,) = asyncio.run(read(f"round-{gen}-class-mix"))
        rows = json.loads(table.data) if isinstance(table.data, str) else table.data
        assert [row["class"] for row in rows] == [str(d) for d in range(10)]
        assert sum(row["kept"] for row in rows) == rows_kept(flow_project[0], gen)
        (summary,) = asyncio.run(read(f"round-{gen}-summary"))
        assert f"# Round {gen}" in summary.data and "test accuracy" in summary.data


def rows_kept(project, gen):
    import pandas as pd

    return int(pd.read_parquet(project / f"data/gen{gen}/refined.parquet")["kept"].sum())
