"""Command-line overrides of raw params: ``key.path[i].leaf=value``, as ``dvc exp run -S`` takes them."""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import yaml

from selftrain.errors import ConfigError


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict:
    """A copy of raw params with `key.path[i].leaf=value` overrides applied (as `dvc exp run -S`).

    Values are parsed as YAML (`0.8`, `true`, `[a, b]`); the key path must already exist,
    except for a new leaf key inside an existing mapping.
    """
    result = copy.deepcopy(dict(raw))
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r}: expected KEY=VALUE")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"override {override!r}: value is not valid YAML") from None
        steps = _key_steps(key)
        node: Any = result
        for depth, step in enumerate(steps[:-1]):
            node = _step_into(node, step, key, steps[: depth + 1])
        last = steps[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or not -len(node) <= last < len(node):
                raise ConfigError(f"override {key}: no list item [{last}] there")
        elif not isinstance(node, dict):
            raise ConfigError(f"override {key}: {last!r} is not inside a mapping")
        node[last] = value
    return result


def _key_steps(key: str) -> list[str | int]:
    steps: list[str | int] = []
    for part in key.split("."):
        name, *indices = part.split("[")
        if name:
            steps.append(name)
        for index in indices:
            if not index.endswith("]") or not index[:-1].lstrip("-").isdigit():
                raise ConfigError(f"override {key}: bad list index [{index}")
            steps.append(int(index[:-1]))
    return steps


def _step_into(node: Any, step: str | int, key: str, walked: list) -> Any:
    try:
        return node[step]
    except (KeyError, IndexError, TypeError):
        where = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in walked).lstrip(".")
        raise ConfigError(f"override {key}: no such key {where}") from None



__all__ = ["apply_overrides"]
