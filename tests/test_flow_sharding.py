"""The flow's fan-out of infer shards: Dask and the default runner write the same table."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch
from prefect.task_runners import ThreadPoolTaskRunner

from conftest import REPO_ROOT, tiny_params, write_params
from flows.sharding import DASK_ADDRESS_ENV, ShardFailed, infer_shard, run_shards, shard_task_runner
from selftrain.config import DataConfig, InferConfig, load_params
from selftrain.data import prepare_digits
from selftrain.models import create_model, header_for, save_model
from selftrain.paths import ProjectPaths

NUM_SHARDS = 2

pytestmark = pytest.mark.usefixtures("prefect_backend")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Code, params (2 shards), prepared digits and a teacher: what infer@1 needs."""
    root = tmp_path_factory.mktemp("sharding") / "project"
    for name in ("selftrain", "stages"):
        shutil.copytree(REPO_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    raw = tiny_params()
    raw["infer"].update(batch_size=16, num_shards=NUM_SHARDS)
    raw["augment"]["device"] = "cpu"
    write_params(root, raw)
    params = load_params(root / "params.yaml")
    paths = ProjectPaths(root)
    dataset = prepare_digits(paths.prepared_dir, DataConfig(subset=200, labeled_fraction=0.2), seed=0)
    torch.manual_seed(0)
    model = create_model(*params.model_size(0), 0.0, 0.0, dataset.num_classes)
    save_model(model, header_for(model, params, dataset, 0), paths.model_dir(0))
    return root, params


def fresh_copy(project, dest):
    shutil.copytree(project, dest, ignore=shutil.ignore_patterns("pseudo_labels"))
    return dest


def test_dask_fan_out_writes_the_same_table_as_the_default_runner(project, tmp_path):
    root, params = project
    threads = fresh_copy(root, tmp_path / "threads")
    dask = fresh_copy(root, tmp_path / "dask")
    thread_runs = run_shards(str(threads), 1, params)
    dask_params = dataclasses.replace(params, infer=dataclasses.replace(params.infer, task_runner="dask"))
    dask_runs = run_shards(str(dask), 1, dask_params)

    assert [r.shard_id for r in dask_runs] == list(range(NUM_SHARDS))
    assert all("Dask" in r.worker for r in dask_runs), [r.worker for r in dask_runs]
    assert not any("Dask" in r.worker for r in thread_runs)
    table_dir = ProjectPaths().pseudo_labels(1)
    for project_dir in (threads, dask):
        assert sorted(p.name for p in (project_dir / table_dir).iterdir()) == [
            f"part-{i:05d}.parquet" for i in range(NUM_SHARDS)
        ]
    by_threads = pd.read_parquet(threads / table_dir)
    by_dask = pd.read_parquet(dask / table_dir)
    manifest = pd.read_parquet(threads / "data/prepared/manifest.parquet")
    assert by_dask["item_id"].tolist() == manifest.loc[manifest["split"] == "unlabeled", "item_id"].tolist()
    pd.testing.assert_frame_equal(by_dask, by_threads, check_exact=False, atol=1e-6)

    # What `dvc repro infer@1` then runs: every part is the teacher's, nothing is redone.
    cmd = [sys.executable, "-m", "stages.infer", "--gen", "1", "--teacher", "models/gen0",
           "--out", str(table_dir)]
    out = subprocess.run(cmd, cwd=dask, capture_output=True, text=True, check=True).stdout
    assert out.count("already written by this teacher, kept") == NUM_SHARDS, out


def test_failing_shard_raises_with_its_output(project, tmp_path):
    root, _ = project
    broken = fresh_copy(root, tmp_path / "broken")
    shutil.rmtree(broken / "models")
    with pytest.raises(ShardFailed, match=r"infer@1 shard 0/2 failed[\s\S]*model"):
        infer_shard.fn(str(broken), 1, 0, 0, 2)


def test_task_runner_follows_params_and_environment(monkeypatch):
    from prefect_dask import DaskTaskRunner

    monkeypatch.delenv(DASK_ADDRESS_ENV, raising=False)
    threads = shard_task_runner(InferConfig(), 2)
    assert isinstance(threads, ThreadPoolTaskRunner) and threads._max_workers == 2
    local = shard_task_runner(InferConfig(task_runner="dask"), 2)
    assert isinstance(local, DaskTaskRunner) and local.address is None
    assert local.cluster_kwargs["n_workers"] == 2 and local.cluster_kwargs["processes"] is False
    monkeypatch.setenv(DASK_ADDRESS_ENV, "tcp://127.0.0.1:8786")
    assert shard_task_runner(InferConfig(task_runner="dask"), 2).address == "tcp://127.0.0.1:8786"
    explicit = InferConfig(task_runner="dask", dask_address="tcp://127.0.0.2:8786")
    assert shard_task_runner(explicit, 2).address == "tcp://127.0.0.2:8786"
