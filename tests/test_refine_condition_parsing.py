"""parse_condition and resolve_class: class names to indices, ops and their stored values."""

from __future__ import annotations

import pytest

from selftrain.errors import ConfigError
from selftrain.refine.condition_parsing import parse_condition, resolve_class
from selftrain.refine.conditions import AllOf, ColumnCondition, GroupCount, Not, Schema

NAMES = ("bed", "island", "dresser", "lamp")
SCHEMA = Schema(class_names=NAMES, extra_columns=("group_id", "source", "width"))
GROUPED = Schema(class_names=NAMES, extra_columns=("group_id",), group_by="group_id")


@pytest.mark.parametrize(
    "value, index",
    [("island", 1), (1, 1), ("1", 1), ("lamp", 3), (3, 3), ("3", 3)],
)
def test_classes_resolve_from_names_indices_and_digit_strings(value, index):
    condition = parse_condition({"column": "pred", "op": "==", "value": value}, SCHEMA, "when")
    assert condition.value == index


def test_a_class_name_wins_over_an_index_it_looks_like():
    assert resolve_class("0", ("b", "0"), "where") == 1


@pytest.mark.parametrize("value", ["sofa", 4, 1.0, True])
def test_an_unknown_class_names_the_key_and_the_known_classes(value):
    with pytest.raises(ConfigError, match=r"^refine\.x: .*known: \['bed'"):
        resolve_class(value, NAMES, "refine.x")


def test_ops_store_their_values():
    for op in ("==", "!=", "<", "<=", ">", ">="):
        assert parse_condition({"column": "width", "op": op, "value": 3}, SCHEMA, "when") == ColumnCondition(
            "width", op, 3
        )
    for op in ("is_null", "not_null"):
        assert parse_condition({"column": "source", "op": op}, SCHEMA, "when") == ColumnCondition("source", op, None)


def test_nested_and_group_conditions_parse_into_their_types():
    raw = {"all": [{"not": {"column": "pred", "op": "in", "value": ["bed"]}}, {"group_count": {"op": ">=", "value": 2}}]}
    assert parse_condition(raw, GROUPED, "when") == AllOf(
        (Not(ColumnCondition("pred", "in", (0,))), GroupCount(">=", 2, None))
    )


def test_errors_start_with_the_path_the_caller_gives():
    with pytest.raises(ConfigError, match=r"^refine\.rules\[3\]\.when\.any\[0\]\.column: unknown column 'colour'"):
        parse_condition({"any": [{"column": "colour", "op": "is_null"}]}, SCHEMA, "refine.rules[3].when")
