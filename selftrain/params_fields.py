"""What every section of the params schema shares: the section config, the error a
validator raises, and the bounded fields used by more than one section."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field
from pydantic_core import PydanticCustomError

# Every section refuses unknown keys (each is also declared frozen).
SECTION = ConfigDict(extra="forbid")
# Error type of `invalid`; `selftrain.config` reads its `key` to name the key path.
INVALID = "selftrain_invalid"


def invalid(message: str, key: str | None = None) -> PydanticCustomError:
    """An error for a validator to raise; `key` (``manifest``, ``classes[1]``) is
    relative to where pydantic reports the error (the section, or the top level)."""
    return PydanticCustomError(INVALID, "{message}", {"message": message, "key": key})


def int_or_auto(value: Any, low: int, high: int, note: str = "") -> Any:
    """`value` if it is "auto" or an integer (not a bool) in [low, high]; else one error
    for both branches of the union (pydantic would report each)."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        return value
    raise invalid(f"expected an integer in [{low}, {high}] or 'auto'{note}, got {value!r}")


def positive_number_auto_or_none(value: Any, high: float) -> Any:
    """`value` if it is "auto", None or a number (not a bool) in (0, high], as a float; else
    one error for the three branches of the union (pydantic would report each)."""
    if value is None or value == "auto":
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < value <= high:
        return float(value)
    raise invalid(f"expected a number in (0, {high:g}], 'auto' or null, got {value!r}")


def width_field(default: Any = ...) -> Any:
    return Field(default, ge=4, le=4096)


def depth_field(default: Any = ...) -> Any:
    return Field(default, ge=1, le=64)


def rate_field(default: float) -> Any:
    """A dropout or drop-path probability."""
    return Field(default, ge=0.0, le=0.95)


def epochs_field(default: Any, low: int = 1) -> Any:
    return Field(default, ge=low, le=10_000)


def batch_size_field(default: int) -> Any:
    return Field(default, ge=1, le=65_536)


def lr_field(default: Any) -> Any:
    return Field(default, ge=1e-8, le=10.0)


def unlabeled_weight_field() -> Any:
    return Field(1.0, ge=0.0, le=100.0)


def unlabeled_threshold_field() -> Any:
    return Field(0.95, ge=0.0, le=1.0)


def unlabeled_ratio_field() -> Any:
    return Field(3.0, gt=0)


def ema_decay_field() -> Any:
    return Field(0.0, ge=0.0, le=0.99999)
