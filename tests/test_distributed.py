"""Training across processes: DDP with gloo on CPU, launched by the train stage itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import psutil
import pytest
import torch
import yaml
from PIL import Image

from conftest import REPO_ROOT, tiny_params
from selftrain.config import DistributedConfig, params_from_dict
from selftrain.data import load_dataset
from selftrain.distributed import (
    World,
    apply_thread_count,
    process_group,
    rank_batch_size,
    resolve_backend,
    strip_ddp_prefix,
    torchrun_command,
)
from selftrain.errors import ConfigError
from selftrain.models import WEIGHTS_FILE, load_model
from selftrain.prediction import predict_split

# Odd, so the two ranks' shards are uneven (20 and 21 rows): with a per-rank batch
# of 4 one rank has 5 batches, the other 6, and the steps must be equalised.
LABELED = 41
TEST = 40
# The teacher's consistency loss reads these (no label): DDP with the learner's parts on.
UNLABELED = 40
# 1 vs 2 processes train on different shards and dropout masks, so the weights differ;
# on this separable task both reach ~100%. 0.1 is 4 of 40 test images: far more
# than the run-to-run spread here, far less than a broken run (~0.5, chance).
ACCURACY_TOLERANCE = 0.1
RUN_TIMEOUT = 150  # seconds; a rank stuck in an all-reduce would otherwise hang the suite


@pytest.fixture(scope="module")
def easy_task(tmp_path_factory):
    """A manifest of 8x8 PNGs: class 0 bright on the left, class 1 on the right."""
    root = tmp_path_factory.mktemp("ddp")
    prepared = root / "prepared"
    (prepared / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(LABELED + TEST + UNLABELED):
        label = i % 2
        img = np.full((8, 8), 20, np.uint8)
        (img[:, :4] if label == 0 else img[:, 4:])[:] = 220
        img = np.clip(img + rng.integers(0, 40, img.shape), 0, 255).astype(np.uint8)
        rel = f"images/{i:03d}.png"
        Image.fromarray(img).save(prepared / rel)
        split = "labeled" if i < LABELED else "test" if i < LABELED + TEST else "unlabeled"
        rows.append((f"item{i:03d}", rel, split, label if split != "unlabeled" else None))
    manifest = pd.DataFrame(rows, columns=["item_id", "path", "split", "label"])
    manifest["label"] = manifest["label"].astype("Int64")
    manifest["true_label"] = pd.array([pd.NA] * len(manifest), dtype="Int64")
    manifest.to_parquet(prepared / "manifest.parquet", index=False)
    (prepared / "classes.json").write_text(json.dumps(["left", "right"]))
    return root


def params_file(root, processes: int):
    raw = tiny_params()
    raw["data"]["image_size"] = 8
    raw["augment"].update(device="cpu", num_threads=1)
    # Consistency loss and weight average on: an epoch is a pass over the 40 unlabeled rows.
    raw["teacher"].update(
        width=8, depth=1, epochs=6, batch_size=8, lr=0.05, input_noise=False,
        unlabeled="consistency", unlabeled_ratio=1.0, unlabeled_threshold=0.8, ema_decay=0.9,
    )  # fmt: skip
    raw["distributed"] = {"processes": processes, "backend": "auto"}
    path = root / f"params{processes}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def train(root, processes: int) -> tuple[subprocess.CompletedProcess, object]:
    """`python -m stages.train_teacher` as DVC runs it (it relaunches itself under torchrun)."""
    run_dir = root / f"run{processes}"
    cmd = [
        sys.executable, "-m", "stages.train_teacher",
        "--params", str(params_file(root, processes)),
        "--manifest", str(root / "prepared" / "manifest.parquet"),
        "--out", str(run_dir / "model"),
        "--live-dir", str(run_dir / "live"),
        "--checkpoint", str(run_dir / "ckpt.pt"),
    ]  # fmt: skip
    # Rendezvous and gloo traffic stay on the loopback interface.
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        # torchrun starts each rank in a session of its own: end the whole tree we started.
        launcher = psutil.Process(proc.pid)
        for process in [*launcher.children(recursive=True), launcher]:
            process.kill()
        out, err = proc.communicate()
        pytest.fail(f"{processes}-process training did not finish in {RUN_TIMEOUT}s:\n{err[-3000:]}")
    assert proc.returncode == 0, f"stdout:\n{out}\nstderr:\n{err[-3000:]}"
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), run_dir


def test_two_gloo_processes_train_like_one(easy_task):
    single, single_dir = train(easy_task, 1)
    double, double_dir = train(easy_task, 2)

    # One process wrote the artifacts and reported: one model, one line per epoch and one
    # summary line, one curve per epoch.
    assert sorted(p.name for p in (double_dir / "model").iterdir()) == ["model.json", WEIGHTS_FILE]
    reported = [line for line in double.stdout.splitlines() if line.startswith("train_teacher:")]
    assert [line.split()[2] for line in reported[:-1]] == [f"{e}/6" for e in range(1, 7)], double.stdout
    assert " parameters, " in reported[-1]
    assert not (double_dir / "ckpt.pt").exists()
    curve = pd.read_csv(double_dir / "live" / "plots" / "metrics" / "train" / "loss.tsv", sep="\t")
    assert curve["step"].tolist() == list(range(6))
    # A plain checkpoint: no DDP prefix, and the single-process loader reads it.
    state = torch.load(double_dir / "model" / WEIGHTS_FILE, weights_only=True)
    assert not any(key.startswith("module.") for key in state)

    dataset = load_dataset(easy_task / "prepared" / "manifest.parquet")
    params = params_from_dict(yaml.safe_load((easy_task / "params1.yaml").read_text()))
    test = dataset.rows("test")
    truth = test["label"].to_numpy(np.int64)
    accuracy = {}
    for name, run_dir in (("single", single_dir), ("double", double_dir)):
        model, header = load_model(run_dir / "model", dataset.class_names)
        accuracy[name] = float((predict_split(model, dataset, test, params).argmax(1) == truth).mean())
    assert accuracy["single"] >= 0.9, accuracy
    assert accuracy["double"] >= 0.9, accuracy
    assert abs(accuracy["double"] - accuracy["single"]) <= ACCURACY_TOLERANCE, accuracy


def test_stage_relaunches_itself_under_torchrun():
    cmd = torchrun_command("stages.train_teacher", ["--out", "m"], 2)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--standalone" in cmd and "--nproc-per-node=2" in cmd
    assert cmd[-4:] == ["-m", "stages.train_teacher", "--out", "m"]


def test_world_size_must_match_params(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ConfigError, match=r"distributed.processes is 4, but torchrun started 2"):
        with process_group(DistributedConfig(processes=4), "cpu"):
            pass


def test_several_processes_without_torchrun_is_an_error(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="torchrun"):
        with process_group(DistributedConfig(processes=2), "cpu"):
            pass
    with process_group(DistributedConfig(processes=1), "cpu") as world:
        assert world == World() and world.is_main


def test_helpers():
    assert rank_batch_size(32, World(size=2)) == 16
    assert rank_batch_size(5, World(size=2)) == 3
    assert rank_batch_size(1, World(size=4)) == 1
    assert resolve_backend("auto", "cpu") == "gloo" and resolve_backend("auto", "gpu") == "nccl"
    with pytest.raises(ConfigError, match="nccl needs GPUs"):
        resolve_backend("nccl", "cpu")
    tensor = torch.zeros(1)
    assert strip_ddp_prefix({"module.a": tensor, "module.b.c": tensor}).keys() == {"a", "b.c"}
    assert strip_ddp_prefix({"a": tensor}).keys() == {"a"}


def test_thread_count_follows_params():
    before = torch.get_num_threads()
    try:
        assert apply_thread_count(DistributedConfig(threads_per_process=0)) == before
        other = before + 1  # differs from the default whatever the machine
        assert apply_thread_count(DistributedConfig(threads_per_process=other)) == other
        assert torch.get_num_threads() == other
    finally:
        torch.set_num_threads(before)
    raw = tiny_params()
    raw["distributed"] = {"threads_per_process": -1}
    with pytest.raises(ConfigError, match=r"distributed.threads_per_process"):
        params_from_dict(raw)
