"""One run per workspace: an advisory lock held for a whole loop.

DVC locks the repository per command, so two loops could interleave their
stages and mix generations; this lock covers the whole run and says who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from selftrain.errors import SelftrainError

LOCK_FILE = Path(".dvc") / "tmp" / "selftrain-run.lock"


class WorkspaceBusy(SelftrainError):
    """Another run holds this workspace."""


@contextlib.contextmanager
def hold_workspace(project_dir: str | Path, timeout_seconds: float = 0.0) -> Iterator[None]:
    """Hold the workspace lock; wait up to `timeout_seconds` for it, then raise WorkspaceBusy."""
    path = Path(project_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "{}"
                    raise WorkspaceBusy(_busy_message(project_dir, holder, timeout_seconds)) from None
                time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "started": datetime.now(timezone.utc).isoformat()}))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _busy_message(project_dir: str | Path, holder: str, timeout_seconds: float) -> str:
    try:
        info = json.loads(holder)
    except json.JSONDecodeError:
        info = {}
    who = f"process {info.get('pid', '?')}, started {info.get('started', '?')}"
    waited = f" after waiting {timeout_seconds:g}s" if timeout_seconds else ""
    return (
        f"another selftrain run ({who}) is using the workspace {Path(project_dir).resolve()}{waited}; "
        "wait for it to finish, or raise loop.lock_timeout_seconds to queue behind it"
    )
