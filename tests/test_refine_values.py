"""The refine section's scalar checks: the value back, or one ConfigError naming the key."""

from __future__ import annotations

import pytest

from selftrain.errors import ConfigError
from selftrain.refine.values import check_bool, check_number, check_optional_number, check_unit


def test_good_values_come_back_as_numbers_or_bools():
    assert check_bool(False, "k") is False
    assert check_number(3, "k") == 3.0 and isinstance(check_number(3, "k"), float)
    assert check_unit(1, "k") == 1.0
    assert check_optional_number(None, "k", low=0.0, high=1.0) is None
    assert check_optional_number(5, "k", low=0.0, high=None) == 5.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: check_bool(1, "refine.a"), "refine.a: expected true or false"),
        (lambda: check_number(True, "refine.a"), "refine.a: expected a number"),
        (lambda: check_number(float("nan"), "refine.a"), "refine.a: expected a finite number"),
        (lambda: check_number(10**400, "refine.a"), "refine.a: number out of range"),
        (lambda: check_unit(1.5, "refine.a"), "refine.a: must be in [0, 1]"),
        (lambda: check_optional_number(-1, "refine.a", low=0.0, high=1.0), "refine.a: must be in [0.0, 1.0]"),
        (lambda: check_optional_number(-1, "refine.a", low=0.0, high=None), "refine.a: must be >= 0.0"),
    ],
)
def test_bad_values_raise_one_config_error_naming_the_key(call, message):
    with pytest.raises(ConfigError) as info:
        call()
    assert str(info.value).startswith(message)
