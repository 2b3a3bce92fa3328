"""The image: `selftrain` as its entrypoint, a results volume, no test-only packages, and a
dependency layer that only requirements.lock invalidates. Read from the Dockerfile itself
(no Docker daemon on the test machines)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

from conftest import REPO_ROOT

LOCK = REPO_ROOT / "requirements.lock"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = (REPO_ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [tuple(line.strip().split(None, 1)) for line in joined.splitlines() if line.strip()]


def only(name: str) -> list[str]:
    return [args for instruction, args in instructions() if instruction == name]


def pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_entrypoint_is_the_console_script_and_run_the_default_command():
    assert json.loads(only("ENTRYPOINT")[-1]) == ["selftrain"]
    assert "selftrain" in pyproject()["project"]["scripts"]
    assert json.loads(only("CMD")[-1]) == ["run"]


def test_dependencies_install_from_the_lock_alone_before_the_code_is_copied():
    steps = instructions()
    copies = [i for i, (instruction, _) in enumerate(steps) if instruction == "COPY"]
    install = next(i for i, (instruction, args) in enumerate(steps) if instruction == "RUN" and "runtime.lock" in args)
    # A metadata edit (pyproject.toml) or a code edit reaches only the layers after the install.
    assert steps[copies[0]][1].split() == ["requirements.lock", "./"]
    assert copies[0] < install < copies[1]


def test_test_only_packages_stay_out_of_the_image():
    test_extra = {re.split(r"[=<>\[]", spec)[0] for spec in pyproject()["project"]["optional-dependencies"]["test"]}
    (declared,) = [args.split("=", 1)[1].strip('"') for args in only("ARG") if args.startswith("TEST_ONLY_PACKAGES=")]
    (install,) = [args for args in only("RUN") if "runtime.lock" in args]
    # The Dockerfile's own filter command, run on the real lock file.
    (filter_cmd,) = [part.strip() for part in install.split("&&") if part.strip().startswith("grep")]
    filter_cmd = filter_cmd.replace("> /tmp/runtime.lock", "")
    kept = subprocess.run(
        ["bash", "-c", filter_cmd], cwd=REPO_ROOT, env={"TEST_ONLY_PACKAGES": declared, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    names = {line.split("==")[0] for line in kept if "==" in line}
    assert test_extra <= set(declared.split())
    assert not names & set(declared.split())
    everything = {line.split("==")[0] for line in LOCK.read_text().splitlines() if "==" in line}
    assert names == everything - set(declared.split())
    assert "tests" in (REPO_ROOT / ".dockerignore").read_text().split()


def test_results_volume_is_the_project_directory_and_documented():
    (workdir,) = only("WORKDIR")
    assert [json.loads(args) for args in only("VOLUME")] == [[workdir]]
    readme = (REPO_ROOT / "README.md").read_text()
    assert f":{workdir} selftrain" in readme
