"""Run a stage's command and pass each output line on as it comes: to the run log and a log file.

A training stage runs for minutes; its per-epoch lines must reach the Prefect run
log while it runs, not after it ends, and the whole output stays in a file that a
failure message can point to.
"""

from __future__ import annotations

import collections
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# Where `selftrain run` keeps each stage's full output (the last attempt), relative to the project.
STAGE_LOG_DIR = Path("logs") / "stages"
TAIL_LINES = 20


@dataclass(frozen=True)
class StageOutput:
    returncode: int
    tail: list[str]  # the last TAIL_LINES non-empty lines, oldest first
    log: Path  # the file holding the whole output


def stage_log_path(project_dir: str | Path, name: str) -> Path:
    return Path(project_dir) / STAGE_LOG_DIR / f"{name}.log"


def run_streaming(
    cmd: list[str], cwd: str | Path, env: dict[str, str], log: Path, on_line: Callable[[str], None]
) -> StageOutput:
    """Run `cmd`, calling `on_line` with each stdout/stderr line as it is written."""
    # Python stages block-buffer stdout into a pipe: without this their lines
    # would arrive together when the stage exits.
    env = {**env, "PYTHONUNBUFFERED": "1"}
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    log.parent.mkdir(parents=True, exist_ok=True)
    # Written as it comes (not renamed into place): `tail -f` follows a running stage.
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        with proc.stdout:
            for raw in proc.stdout:
                line = raw.rstrip()
                out.write(line + "\n")
                out.flush()
                if line.strip():
                    tail.append(line)
                    on_line(line)
        returncode = proc.wait()
    return StageOutput(returncode=returncode, tail=list(tail), log=log)
