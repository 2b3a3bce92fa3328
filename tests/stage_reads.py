"""Record what a stage really reads while it runs: params keys and the repository's code.

`recording()` patches `__getattribute__` of the typed config classes for its
duration: reading `params.data.image_size` records `data.image_size`; a top-level
field that is not a section (`seed`, `refine`, `generations`) records its name.
Reads made while params are being loaded and validated are not counted (validation
looks at every key; the stage does not depend on them all). Code is recorded by a
call-event trace (`sys.settrace`, every thread): the repository files whose
functions ran.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from selftrain import config

REPO_ROOT = Path(config.__file__).resolve().parents[1]
# Code a stage runs that dvc.yaml must declare (library and stage commands).
CODE_DIRS = (str(REPO_ROOT / "selftrain") + "/", str(REPO_ROOT / "stages") + "/")


@dataclass
class Reads:
    params: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    loading: bool = False


def _sections() -> dict[type, str]:
    """Config dataclass -> its key in params.yaml (`DataConfig` -> `data`)."""
    found = {}
    for f in dataclasses.fields(config.Params):
        cls = f.type if isinstance(f.type, type) else getattr(config, str(f.type), None)
        if cls is not None and dataclasses.is_dataclass(cls):
            found[cls] = f.name
    return found


@contextmanager
def recording() -> Iterator[Reads]:
    reads = Reads()
    sections = _sections()
    top = {f.name for f in dataclasses.fields(config.Params)} - set(sections.values())
    classes = [*sections, config.Params]
    own = {cls: cls.__dict__.get("__getattribute__") for cls in classes}

    def recorder(cls: type, keys: dict[str, str]):
        original = cls.__getattribute__

        def getattribute(self, name):
            if name in keys and not reads.loading:
                reads.params.add(keys[name])
            return original(self, name)

        return getattribute

    for cls, section in sections.items():
        cls.__getattribute__ = recorder(cls, {f.name: f"{section}.{f.name}" for f in dataclasses.fields(cls)})
    config.Params.__getattribute__ = recorder(config.Params, {name: name for name in top})

    original_load = config.params_from_dict

    def params_from_dict(*args, **kwargs):
        reads.loading = True
        try:
            return original_load(*args, **kwargs)
        finally:
            reads.loading = False

    config.params_from_dict = params_from_dict

    def trace(frame, event, arg):
        path = frame.f_code.co_filename
        if path.startswith(CODE_DIRS):
            reads.files.add(str(Path(path).relative_to(REPO_ROOT)))
        return None  # calls only: no per-line tracing

    sys.settrace(trace)
    threading.settrace(trace)
    try:
        yield reads
    finally:
        sys.settrace(None)
        threading.settrace(None)
        config.params_from_dict = original_load
        for cls, original in own.items():
            if original is None:
                del cls.__getattribute__
            else:
                cls.__getattribute__ = original
