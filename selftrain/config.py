"""Load params.yaml once into the typed, frozen `Params`: one `ConfigError` naming the key path.

`load_params` reads the YAML, applies ``KEY=VALUE`` overrides (`selftrain.overrides`),
validates it against the schema (`selftrain.params_schema`) and turns pydantic's first
error into one line naming the key path and what is allowed (``teacher.epochs: must be
in [1, 10000], got 0``). Library code receives these objects, never raw dicts; the
schema's names are re-exported here, so callers import params from this one module.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from selftrain.errors import ConfigError
from selftrain.overrides import apply_overrides
from selftrain.params_fields import INVALID
from selftrain.params_data import INPUT_CHANNELS, MANIFEST_SUFFIXES, SOURCE_CHOICES, DataConfig
from selftrain.params_schema import (
    BACKEND_CHOICES,
    DEVICE_CHOICES,
    GEOMETRY_CHOICES,
    TASK_RUNNER_CHOICES,
    AugmentConfig,
    CalibrationConfig,
    DistributedConfig,
    GenerationConfig,
    InferConfig,
    LoopConfig,
    OptimConfig,
    Params,
    StudentConfig,
    TeacherConfig,
    TrainConfig,
)
from selftrain.params_training import UNLABELED_CHOICES

_PARAMS = TypeAdapter(Params)
# pydantic error types, by what they mean for a params key.
_UNKNOWN = ("unexpected_keyword_argument", "extra_forbidden")
_EXPECTED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "tuple_type": "a list",
    "list_type": "a list",
}
_MAPPING = ("dataclass_type", "dict_type", "mapping_type")


def read_raw_params(path: str | Path) -> Any:
    """The parsed YAML of a params file, unvalidated."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such params file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_params(path: str | Path = "params.yaml", overrides: Sequence[str] = ()) -> Params:
    """Read and validate `params.yaml` (plus KEY=VALUE overrides); errors name the file and key."""
    path = Path(path)
    raw = read_raw_params(path)
    try:
        if overrides:
            if not isinstance(raw, Mapping):
                raise ConfigError(f"top level: expected a mapping, got {type(raw).__name__}")
            raw = apply_overrides(raw, overrides)
        return params_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def params_from_dict(raw: Any) -> Params:
    """Validate raw params (a parsed params.yaml) into `Params`."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"top level: expected a mapping, got {type(raw).__name__}")
    try:
        return _PARAMS.validate_python(dict(raw))
    except ValidationError as exc:
        # An unknown key first (it is often the cause of the other errors: a typo).
        errors = sorted(exc.errors(), key=lambda e: e["type"] not in _UNKNOWN)
        raise ConfigError(_message(errors[0])) from None


def _message(error: Mapping[str, Any]) -> str:
    """One pydantic error as ``key.path: what is wrong, got value``."""
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    path = _path(loc)
    if kind == INVALID:
        key = ctx.get("key")
        if key:
            path = f"{path}{'' if key.startswith('[') or not path else '.'}{key}"
        return f"{path or 'top level'}: {ctx['message']}"
    if kind in _UNKNOWN:
        return f"{path}: unknown key; allowed: {sorted(_fields(_owner(loc[:-1])))}"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind in _MAPPING:
        return f"{path or 'top level'}: expected a mapping, got {type(value).__name__}"
    if kind in _EXPECTED:
        return f"{path}: expected {_EXPECTED[kind]}, got {value!r}"
    field = _fields(_owner(loc[:-1])).get(loc[-1]) if loc else None
    if kind == "literal_error" and not isinstance(value, str):
        return f"{path}: expected a string, got {value!r}"  # every choice is a string
    if kind == "literal_error" and field is not None:
        return f"{path}: must be one of {list(_choices(field.annotation))}, got {value!r}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than") and field is not None:
        if isinstance(value, int) and _is_float(field.annotation):
            value = float(value)  # as validation would have stored it
        low, high, above = (_bound(field, name) for name in ("ge", "le", "gt"))
        if above is not None:
            return f"{path}: must be > {above}, got {value!r}"
        if low is not None and high is not None:
            return f"{path}: must be in [{low}, {high}], got {value!r}"
    return f"{path or 'top level'}: {error['msg']}"


def _path(loc: tuple) -> str:
    """('data', 'classes', 1) -> 'data.classes[1]'."""
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in loc).lstrip(".")


def _owner(loc: tuple) -> Any:
    """The schema class at `loc` (a section, or a generation under `generations`)."""
    owner: Any = Params
    for step in loc:
        field = _fields(owner).get(step)
        if field is not None:
            owner = field.annotation
        elif typing.get_origin(owner) is dict:
            owner = typing.get_args(owner)[1]  # a key of `generations`: its value's class
        else:
            return None
    return owner


def _fields(owner: Any) -> dict[str, FieldInfo]:
    return getattr(owner, "__pydantic_fields__", {})


def _choices(annotation: Any) -> tuple:
    for option in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(option) is typing.Literal:
            return typing.get_args(option)
    return ()


def _bound(field: FieldInfo, name: str) -> Any:
    """The `Field` constraint `name` (ge, le, gt) as written in the schema, or None."""
    return next((getattr(m, name) for m in field.metadata if hasattr(m, name)), None)


def _is_float(annotation: Any) -> bool:
    """float, Annotated[float, ...] or either of them | None."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation is float or any(_is_float(a) for a in typing.get_args(annotation) if a is not type(None))


__all__ = [
    "BACKEND_CHOICES",
    "DEVICE_CHOICES",
    "GEOMETRY_CHOICES",
    "INPUT_CHANNELS",
    "MANIFEST_SUFFIXES",
    "SOURCE_CHOICES",
    "TASK_RUNNER_CHOICES",
    "UNLABELED_CHOICES",
    "AugmentConfig",
    "CalibrationConfig",
    "DataConfig",
    "DistributedConfig",
    "GenerationConfig",
    "InferConfig",
    "LoopConfig",
    "OptimConfig",
    "Params",
    "StudentConfig",
    "TeacherConfig",
    "TrainConfig",
    "apply_overrides",
    "load_params",
    "params_from_dict",
    "read_raw_params",
]
