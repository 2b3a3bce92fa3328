"""Shared fixtures: tiny params, and real temporary git + DVC projects."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from selftrain.generation_deps import with_generation_deps

REPO_ROOT = Path(__file__).resolve().parents[1]
# What a project copy needs to run the pipeline (no data, no models: those are made).
# data/raw holds only its README here; prepare depends on the folder for every source.
PROJECT_FILES = (
    "selftrain", "stages", "flows", "selftrain_cli", "dvc.yaml", "params.yaml", ".dvcignore", "data/raw",
    "data/corrections.csv", "weights",
)

# Stages run `python -m stages.x` under DVC: this interpreter must be first on PATH.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Flows in tests start Prefect's temporary server; on a loaded 2-core machine its default
# 20 s start-up timeout is too short (selftrain_cli.flow sets the same for `selftrain run`).
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def tiny_params(base: dict | None = None) -> dict:
    """The shipped params shrunk to seconds: 2 generations, 1 epoch, 300 digits."""
    params = base or yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["data"].update(subset=300, image_size=16, labeled_fraction=0.2)
    params["teacher"].update(width=8, depth=1, epochs=2, batch_size=16)
    params["student"].update(epochs=1, batch_size=16, batch_ratio=2.0)
    params["augment"].update(num_threads=1)
    params["infer"].update(batch_size=64)
    # A two-epoch teacher is barely confident: keep its pseudo-labels (no thresholds).
    params["refine"]["threshold"] = 0.0
    params["refine"]["class_thresholds"] = {}
    params["generations"] = {
        "1": {"teacher": 0, "width": 8, "depth": 1},
        "2": {"teacher": 1, "width": 12, "depth": 1},
    }
    params["evaluate_generations"] = [0, 1, 2]
    # Tiny models are noisy on a tiny val split: never gate here (gate tests set their own).
    params["loop"].update(min_gain=-1.0, patience=1, retries=0, retry_delay_seconds=0)
    return params


def tiny_multilabel_params() -> dict:
    """`tiny_params` in task multilabel on 400 digits-mosaic images, with a label-set rule."""
    params = tiny_params()
    params["task"] = "multilabel"
    params["data"].update(source="digits-mosaic", subset=0, image_size="auto", labeled_fraction=0.2)
    params["data"]["mosaic"] = {"count": 400, "blank_share": 0.25, "seed": 0}
    # Sigmoid thresholds must lie inside (0, 1); a two-epoch teacher is unsure: keep every row.
    params["multilabel"]["threshold"] = 0.3
    params["refine"]["balance"] = {"enabled": True}
    params["refine"]["rules"] = [
        # The example shape, on digits: a 1 beside a 7 is most often a misread 7.
        {"name": "no-1-beside-7", "when": {"labels_has_all": ["1", "7"]}, "remove_label": "1"},
    ]
    return params


def pipeline_for(params: dict) -> dict:
    """The repository's dvc.yaml with select_best's and report's per-generation deps
    listed for the generations in `params` (what a user edits with the generation count)."""
    pipeline = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    return with_generation_deps(pipeline, params["evaluate_generations"])


def write_params(project: Path, params: dict) -> None:
    """params.yaml, and dvc.yaml's per-generation deps to match its generations."""
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (project / "dvc.yaml").write_text(yaml.safe_dump(pipeline_for(params), sort_keys=False))


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def dvc(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd=project, check=check)


def git(project: Path, *args: str) -> subprocess.CompletedProcess:
    return run(["git", *args], cwd=project)


def ran_stages(repro_output: str) -> list[str]:
    """Stage names DVC ran (not skipped) according to `dvc repro` output."""
    return [
        line.split("'")[1]
        for line in repro_output.splitlines()
        if line.startswith("Running stage '")
    ]


def make_project(dest: Path, params: dict) -> Path:
    """A fresh git repo with the pipeline's code, `dvc init`, and the given params."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    write_params(dest, params)
    git(dest, "init", "-q")
    git(dest, "config", "user.email", "test@localhost")
    git(dest, "config", "user.name", "test")
    dvc(dest, "init", "-q")
    dvc(dest, "config", "core.analytics", "false")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "project")
    return dest


def copy_project(src: Path, dest: Path) -> Path:
    """A copy of a project with its git history, DVC cache and outputs."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


@pytest.fixture(scope="session")
def reproduced_project(tmp_path_factory) -> Path:
    """A tiny project after one full `dvc repro`; copy it before changing it."""
    project = make_project(tmp_path_factory.mktemp("reproduced") / "project", tiny_params())
    proc = dvc(project, "repro")
    (project.parent / "first_repro.log").write_text(proc.stdout)
    return project


@pytest.fixture(scope="module")
def prefect_backend(tmp_path_factory):
    """An isolated PREFECT_HOME and a temporary local Prefect server for one module's flow runs."""
    from prefect.testing.utilities import prefect_test_harness

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect_home")))
        with prefect_test_harness(server_startup_timeout=120):
            yield
