"""A stage command's output: each line passed on as it comes (run log and a log file), and
a failure said in one line that also tells the flow whether a retry can help.

A training stage runs for minutes; its per-epoch lines must reach the Prefect run
log while it runs, not after it ends, and the whole output stays in a file that the
failure's one line points to.
"""

from __future__ import annotations

import collections
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from selftrain.errors import EXIT_INPUT_ERROR, SelftrainError

# Where each stage's full output (of its last attempt) is kept, relative to the project.
STAGE_LOG_DIR = Path("logs") / "stages"
TAIL_LINES = 20
# Output lines of a failed stage quoted in its one-line error.
FAILURE_LINES = 3
# The stages' status for bad input (stages/common.py), and argparse's for a bad command line.
NOT_RETRYABLE_EXITS = frozenset({EXIT_INPUT_ERROR, 2})


class StageFailed(SelftrainError):
    """A stage command exited non-zero; the message is one line with its last output lines."""


class StageFailedOnInput(StageFailed):
    """The stage rejected its input (config, data, a missing file): retrying cannot help."""


@dataclass(frozen=True)
class StageOutput:
    returncode: int
    tail: list[str]  # the last TAIL_LINES non-empty lines, oldest first
    log: Path  # the file holding the whole output


def stage_log_path(project_dir: str | Path, name: str) -> Path:
    return Path(project_dir) / STAGE_LOG_DIR / f"{name}.log"


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The run logger inside a flow or task run; a module logger when a test calls a task's
    plain function (`task.fn`)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


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


def failure(
    what: str, code: int, lines: list[str], log: Path, kinds: tuple[type, type] = (StageFailed, StageFailedOnInput)
) -> StageFailed:
    """`<what> failed (exit N): <last lines, joined by |> (full output: <log>)`, as the
    first of `kinds`, or the second (not retried) when the exit status says bad input."""
    last = " | ".join(line.strip() for line in lines[-FAILURE_LINES:]) or "no output"
    on_input = code in NOT_RETRYABLE_EXITS
    retry = ", not retried: a retry would fail the same way" if on_input else ""
    return kinds[on_input](f"{what} failed (exit {code}{retry}): {last} (full output: {log})")


def retry_if_it_can_pass(task, task_run, state) -> bool:
    """Prefect's retry condition: never retry a stage that failed on its input."""
    try:
        state.result()
    except StageFailedOnInput:
        return False
    except Exception:
        return True
    return True
