"""Scheduled retraining against a real `prefect server start` on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from conftest import dvc, make_project, tiny_params

pytestmark = pytest.mark.integration
SERVER_START_SECONDS = 180
RUN_COMPLETED_SECONDS = 420


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wait_for(predicate, seconds: float, what: str, procs=()):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"{what}: a process exited early with {proc.returncode}")
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"{what}: not within {seconds}s")


@pytest.fixture()
def prefect_server(tmp_path):
    port = free_port()
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect_home"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"

    def healthy():
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, SERVER_START_SECONDS, "prefect server start", [proc])
        yield api, env
    finally:
        stop(proc)
        log.close()


def completed_runs(api: str) -> list[dict]:
    body = {"flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}}}
    runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()
    failed = [r for r in runs if r["state_type"] != "COMPLETED"]
    assert not failed, f"a scheduled run ended {failed[0]['state_type']}: {failed[0]['state']}"
    return runs


def test_served_deployment_runs_on_schedule_and_saves_an_experiment(prefect_server, tmp_path):
    api, env = prefect_server
    project = make_project(tmp_path / "project", tiny_params())
    env = dict(env, PREFECT_API_URL=api, PYTHONPATH=str(project))
    log = open(tmp_path / "serve.log", "w")
    serve = subprocess.Popen(
        [sys.executable, "-m", "selftrain_cli", "--project-dir", str(project), "serve", "--interval", "10"],
        cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        runs = wait_for(lambda: completed_runs(api), RUN_COMPLETED_SECONDS, "a scheduled run", [serve])
    finally:
        stop(serve)
        log.close()
    assert runs[0]["deployment_id"] is not None
    experiments = json.dumps(json.loads(dvc(project, "exp", "show", "--json").stdout))
    assert '"run-' in experiments
    assert json.loads(dvc(project, "status", "--json").stdout) == {}
