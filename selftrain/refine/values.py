"""Scalar checks for the ``refine:`` section: each returns the value or raises one ConfigError.

The message starts with the key path the caller passes as ``where``.
"""

from __future__ import annotations

import math
from typing import Any

from selftrain.errors import ConfigError


def check_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def check_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:
        raise ConfigError(f"{where}: number out of range, got {value!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return value


def check_unit(value: Any, where: str) -> float:
    value = check_number(value, where)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}: must be in [0, 1], got {value!r}")
    return value


def check_optional_number(value: Any, where: str, low: float, high: float | None) -> float | None:
    if value is None:
        return None
    value = check_number(value, where)
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ConfigError(f"{where}: must be {'in ' if high is not None else ''}{bound}, got {value!r}")
    return value
