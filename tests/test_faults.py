"""Faults the pipeline survives: kill -9 mid-stage, a failing artifact write."""

from __future__ import annotations

import json
import os
import shutil
import resource
import signal
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from conftest import copy_project, dvc, make_project, tiny_params

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """A tiny project whose students train a few epochs (so a kill lands mid-training)."""
    params = tiny_params()
    params["student"]["epochs"] = 4
    project = make_project(tmp_path_factory.mktemp("faults") / "project", params)
    dvc(project, "repro")
    return project


def lock_outs(project) -> dict:
    """Every stage's output hashes as dvc.lock records them."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {
        name: sorted((out["path"], out.get("md5")) for out in stage.get("outs", []))
        for name, stage in lock["stages"].items()
    }


def kill_during(project, stage: str, when) -> None:
    """Force `stage` to rerun and SIGKILL the whole `dvc repro` process group once `when()` holds."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", "--force", "--single-item", stage],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not when() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"{stage} finished before the kill; the test did not interrupt it"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def stage_running(module: str) -> bool:
    """A `python -m <module>` process exists (DVC started the stage's command)."""
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if module in cmdline and "-m" in cmdline:
            return True
    return False


def assert_whole_or_absent(path) -> None:
    """An artifact path holds a complete artifact or nothing; temporaries stay hidden beside it."""
    import pandas as pd

    if path.is_dir() and path.name.startswith("gen"):
        assert {p.name for p in path.iterdir()} == {"model.pt", "model.json"}
    elif path.is_dir():  # a sharded table: only whole parts, each readable
        for part in path.iterdir():
            assert part.name.startswith("part-") and part.suffix == ".parquet", part
            pd.read_parquet(part)  # a truncated Parquet file would not read
    elif path.exists():
        pd.read_parquet(path)


@pytest.mark.parametrize(
    "stage, artifact, started",
    [
        # Killed after the first epoch's checkpoint: the rerun resumes from it.
        ("train_student@1", "models/gen1", lambda p: (p / "checkpoints/gen1.pt").exists()),
        # Its output persists across runs (shards may be written ahead): remove it
        # first, and kill once the stage's own process is running.
        ("infer@1", "data/gen1/pseudo_labels", lambda p: stage_running("stages.infer")),
        ("refine@1", "data/gen1/refined.parquet", None),
    ],
)
def test_kill_9_then_rerun_equals_a_clean_run(clean_run, tmp_path, stage, artifact, started):
    project = copy_project(clean_run, tmp_path / "p")
    expected = lock_outs(project)
    if stage.startswith("infer@"):
        shutil.rmtree(project / artifact)
    if started is None:
        # DVC deletes a stage's outputs right before it runs the command.
        started = lambda p: not (p / artifact).exists()  # noqa: E731
    kill_during(project, stage, lambda: started(project))
    assert_whole_or_absent(project / artifact)
    # Forced: a plain `dvc repro` would check the clean run's outputs out of the
    # cache instead of running the killed stage again (and resuming it).
    dvc(project, "repro", "--force", "--single-item", stage)
    assert lock_outs(project) == expected
    assert json.loads(dvc(project, "status", "--json").stdout) == {}
    assert not (project / "checkpoints/gen1.pt").exists()


def test_failed_artifact_write_keeps_the_previous_round(clean_run, tmp_path):
    project = copy_project(clean_run, tmp_path / "p")
    refined = project / "data/gen1/refined.parquet"
    before = refined.read_bytes()

    def small_file_limit():
        # Writes past 4 KiB fail with EFBIG, as a full disk fails with ENOSPC.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = subprocess.run(
        [sys.executable, "-m", "stages.refine", "--gen", "1",
         "--pseudo-labels", "data/gen1/pseudo_labels",
         "--out", "data/gen1/refined.parquet", "--report", "data/gen1/rules_report.json"],
        cwd=project, capture_output=True, text=True, preexec_fn=small_file_limit,
    )
    assert proc.returncode == 1
    assert "data/gen1/refined.parquet: cannot write artifact" in proc.stderr
    assert refined.read_bytes() == before
    leftovers = [p.name for p in refined.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
