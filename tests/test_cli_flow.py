"""`selftrain run`: params checked before Prefect starts, `--project-dir` anywhere, one-line failures."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import REPO_ROOT, make_project, tiny_params, write_params
from selftrain_cli.main import build_parser, main

# Runs `selftrain run` in a fresh interpreter and reports whether Prefect was imported.
RUN_AND_REPORT_PREFECT = (
    "import sys; from selftrain_cli.main import main; "
    "code = main(sys.argv[1:]); print(code, 'prefect' in sys.modules)"
)


def _run_in_fresh_interpreter(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT_PREFECT, *argv],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_bad_params_fail_before_prefect_is_imported(tmp_path):
    params = tiny_params()
    params["teacher"]["epochs"] = -1
    write_params(tmp_path, params)
    proc = _run_in_fresh_interpreter("--project-dir", str(tmp_path), "run")
    assert proc.stdout.split() == ["1", "False"], proc.stderr
    assert proc.stderr.startswith("error: ") and "teacher.epochs" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_generations_beyond_params_fail_before_prefect_is_imported(tmp_path):
    write_params(tmp_path, tiny_params())  # generations 1..2
    proc = _run_in_fresh_interpreter("--project-dir", str(tmp_path), "run", "--generations", "5")
    assert proc.stdout.split() == ["1", "False"], proc.stderr
    assert "generations=5: params.yaml defines generations 1..2" in proc.stderr


def test_dvc_yaml_listing_other_generations_fails_before_prefect_is_imported(tmp_path):
    # params.yaml cut to 1 generation, dvc.yaml still listing the shipped ones: DVC itself
    # fails only at select_best, after every generation has trained.
    params = tiny_params()
    params["generations"] = {"1": params["generations"]["1"]}
    params["evaluate_generations"] = [0, 1]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "dvc.yaml").write_text((REPO_ROOT / "dvc.yaml").read_text())
    proc = _run_in_fresh_interpreter("--project-dir", str(tmp_path), "run")
    assert proc.stdout.split() == ["1", "False"], proc.stderr
    assert f"{tmp_path / 'dvc.yaml'}: stage select_best's deps also lists metrics/gen2.json" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["run"], "."),
        (["--project-dir", "before", "run"], "before"),
        (["run", "--project-dir", "after"], "after"),
        (["--project-dir", "before", "inspect", "--project-dir", "after", "--gen", "1"], "after"),
        (["report", "--project-dir", "after"], "after"),
    ],
)
def test_project_dir_before_or_after_the_command(argv, expected):
    assert build_parser().parse_args(argv).project_dir == expected


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_backend")
def test_failed_stage_ends_the_run_with_one_line(tmp_path, capsys):
    params = tiny_params()
    params["data"].update(source="manifest", manifest="data/raw/missing.csv", subset=0)
    params["loop"].update(retries=2, retry_delay_seconds=0)
    project = make_project(tmp_path / "p", params)
    assert main(["--project-dir", str(project), "run"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    log = project / "logs/stages/prepare.log"
    assert last.startswith("error: stage prepare failed (exit 3, not retried")
    assert "data/raw/missing.csv: manifest not found (data.manifest)" in last
    assert last.endswith(f"(full output: {log})")
    assert "manifest not found" in log.read_text()
