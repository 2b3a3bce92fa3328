"""A stage's output lines reach the caller while the stage runs, and its log file keeps them all."""

from __future__ import annotations

import os
import sys

from flows.stage_output import run_streaming

# Prints a line (plain print: stdout into a pipe is block-buffered unless told otherwise),
# then waits for the caller to have seen it before it goes on. Gives up after a minute,
# so a caller that only reads at exit fails instead of hanging.
WAITS_FOR_ITS_FIRST_LINE_TO_BE_SEEN = """
import os, sys, time
print("epoch 1/2")
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[1]):
    if time.monotonic() > deadline:
        print("the first line was not passed on while the stage ran")
        sys.exit(1)
    time.sleep(0.05)
print("epoch 2/2")
print("oops", file=sys.stderr)
"""


def test_lines_are_passed_on_while_the_stage_runs(tmp_path):
    seen_marker = tmp_path / "seen"
    lines = []

    def on_line(line):
        lines.append(line)
        if line == "epoch 1/2":
            seen_marker.touch()

    log = tmp_path / "logs" / "stage.log"
    # As a user's shell has it: Python's stdout into a pipe buffered.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    output = run_streaming(
        [sys.executable, "-c", WAITS_FOR_ITS_FIRST_LINE_TO_BE_SEEN, str(seen_marker)],
        cwd=tmp_path, env=env, log=log, on_line=on_line,
    )  # fmt: skip
    assert output.returncode == 0, lines
    assert lines == ["epoch 1/2", "epoch 2/2", "oops"]
    assert output.tail == lines
    assert log.read_text() == "epoch 1/2\nepoch 2/2\noops\n"
