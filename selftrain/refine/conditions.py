"""Rule conditions: parsed from plain data, evaluated as boolean masks over the round's table.

A condition is one of

- ``{column: <name>, op: <op>, value: <v>}`` — compare one column with a value;
- ``{all: [<cond>, ...]}``, ``{any: [<cond>, ...]}``, ``{not: <cond>}`` — combine;
- ``{group_has: [<class>, ...]}`` — every listed class is the current label of at
  least one *other* live row of the row's group (rows sharing the ``group_by`` value);
- ``{group_count: {class: <class>, op: <op>, value: <int>}}`` — how many other live
  rows of the group carry that class (``class`` omitted: how many other live rows).

Nothing here evaluates strings: an operator is a key into `_OPS`. A null cell matches
only ``is_null`` (every other comparison, ``!=`` and ``not_in`` included, is false
on it; ``not`` inverts the whole result). Class columns (``pred``, ``prev_pred``,
``second_pred``, ``label``) take class names or indices, resolved to indices here.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from selftrain.errors import ConfigError

# Ground truth of benchmark rows; rules may never read it (see refine.engine).
TRUTH_COLUMN = "true_label"

# Columns whose values are class indices; rules may spell values as class names.
CLASS_COLUMNS = ("pred", "prev_pred", "second_pred", "label")
NUMBER_COLUMNS = (
    "confidence",
    "margin",
    "entropy",
    "second_confidence",
    "prev_confidence",
    "weight",
    "teacher_gen",
)
TEXT_COLUMNS = ("item_id", "path")

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
ORDER_OPS = ("<", "<=", ">", ">=")
SET_OPS = ("in", "not_in")
NULL_OPS = ("is_null", "not_null")
ALL_OPS = (*_OPS, *SET_OPS, *NULL_OPS)
COMBINATORS = ("all", "any", "not")
GROUP_FORMS = ("group_has", "group_count")
CONDITION_FORMS = ("column", *COMBINATORS, *GROUP_FORMS)


@dataclass(frozen=True)
class ColumnCondition:
    column: str
    op: str
    # Scalar for comparisons, tuple for in/not_in, None for is_null/not_null;
    # class indices (not names) on class columns.
    value: Any = None


@dataclass(frozen=True)
class AllOf:
    items: tuple["Condition", ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple["Condition", ...]


@dataclass(frozen=True)
class Not:
    item: "Condition"


@dataclass(frozen=True)
class GroupHas:
    classes: tuple[int, ...]


@dataclass(frozen=True)
class GroupCount:
    op: str
    value: int
    # None counts every other live row of the group, whatever its label.
    class_index: int | None = None


Condition = Union[ColumnCondition, AllOf, AnyOf, Not, GroupHas, GroupCount]


@dataclass(frozen=True)
class Schema:
    """What a condition may name: the dataset's classes and the table's columns."""

    class_names: tuple[str, ...]
    # Metadata columns the manifest carries (``group_id``, ``source``, ...).
    extra_columns: tuple[str, ...] = ()
    group_by: str | None = None

    @property
    def known_columns(self) -> tuple[str, ...]:
        base = (*TEXT_COLUMNS, *CLASS_COLUMNS, *NUMBER_COLUMNS)
        extra = tuple(c for c in self.extra_columns if c not in base and c != TRUTH_COLUMN)
        return tuple(sorted(base + extra))

    def column_kind(self, column: str) -> str:
        if column in CLASS_COLUMNS:
            return "class"
        if column in NUMBER_COLUMNS:
            return "number"
        if column in TEXT_COLUMNS:
            return "text"
        return "any"


def resolve_class(value: Any, class_names: Sequence[str], where: str) -> int:
    """A class name, an index, or an index spelled as a digit string -> the index.

    A name wins over an index: with names ``["0", ..., "9"]`` both readings agree,
    and a dataset whose name ``"3"`` sits at another index means the name.
    """
    hint = f"known: {list(class_names)} (or indices 0..{len(class_names) - 1})"
    if isinstance(value, str):
        if value in class_names:
            return list(class_names).index(value)
        if value.isascii() and value.isdigit() and len(value) < 10 and int(value) < len(class_names):
            return int(value)
        raise ConfigError(f"{where}: unknown class {value!r}; {hint}")
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(class_names):
            return value
        raise ConfigError(f"{where}: unknown class index {value!r}; {hint}")
    raise ConfigError(f"{where}: expected a class name or index, got {value!r}; {hint}")


def parse_condition(raw: Any, schema: Schema, where: str) -> Condition:
    """Validate one condition (recursively) and resolve its class names."""
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}: expected a condition mapping with one of {list(CONDITION_FORMS)}, "
            f"got {_describe(raw)}"
        )
    forms = [k for k in CONDITION_FORMS if k in raw]
    if len(forms) != 1:
        unknown = sorted(str(k) for k in raw if k not in (*CONDITION_FORMS, "op", "value"))
        if unknown:
            raise ConfigError(
                f"{where}.{unknown[0]}: unknown condition key; a condition is one of "
                f"{list(CONDITION_FORMS)}"
            )
        raise ConfigError(
            f"{where}: a condition needs exactly one of {list(CONDITION_FORMS)}, "
            f"got {sorted(str(k) for k in raw)}"
        )
    form = forms[0]
    if form == "column":
        return _parse_column(raw, schema, where)
    extra = sorted(str(k) for k in raw if k != form)
    if extra:
        raise ConfigError(f"{where}.{extra[0]}: unknown key next to {form!r}")
    body = raw[form]
    if form in ("all", "any"):
        if not isinstance(body, list) or not body:
            raise ConfigError(f"{where}.{form}: expected a non-empty list of conditions, got {_describe(body)}")
        items = tuple(parse_condition(c, schema, f"{where}.{form}[{i}]") for i, c in enumerate(body))
        return AllOf(items) if form == "all" else AnyOf(items)
    if form == "not":
        return Not(parse_condition(body, schema, f"{where}.not"))
    if schema.group_by is None:
        raise ConfigError(f"{where}.{form}: group conditions need refine.group_by (the column that forms groups)")
    if form == "group_has":
        if isinstance(body, (str, int)) and not isinstance(body, bool):
            body = [body]
        if not isinstance(body, list) or not body:
            raise ConfigError(f"{where}.group_has: expected a non-empty list of classes, got {_describe(body)}")
        classes = tuple(
            resolve_class(c, schema.class_names, f"{where}.group_has[{i}]") for i, c in enumerate(body)
        )
        return GroupHas(classes)
    return _parse_group_count(body, schema, f"{where}.group_count")


def _parse_column(raw: Mapping, schema: Schema, where: str) -> ColumnCondition:
    unknown = sorted(str(k) for k in raw if k not in ("column", "op", "value"))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; a column condition has column, op, value")
    column = raw["column"]
    if not isinstance(column, str):
        raise ConfigError(f"{where}.column: expected a column name, got {_describe(column)}")
    if column == TRUTH_COLUMN:
        raise ConfigError(
            f"{where}.column: {TRUTH_COLUMN!r} is ground truth and may never be read by rules"
        )
    if column not in schema.known_columns:
        raise ConfigError(
            f"{where}.column: unknown column {column!r}; known: {list(schema.known_columns)}"
        )
    if "op" not in raw:
        raise ConfigError(f"{where}.op: required key is missing; ops: {list(ALL_OPS)}")
    op = raw["op"]
    if not isinstance(op, str) or op not in ALL_OPS:
        raise ConfigError(f"{where}.op: unknown op {op!r}; ops: {list(ALL_OPS)}")
    kind = schema.column_kind(column)
    if op in NULL_OPS:
        if "value" in raw:
            raise ConfigError(f"{where}.value: op {op!r} takes no value")
        return ColumnCondition(column, op)
    if "value" not in raw:
        raise ConfigError(f"{where}.value: required key is missing for op {op!r}")
    value = raw["value"]
    if kind == "class" and op in ORDER_OPS:
        raise ConfigError(
            f"{where}.op: op {op!r} does not apply to class column {column!r}; "
            f"use ==, !=, in, not_in, is_null, not_null"
        )
    if op in SET_OPS:
        if not isinstance(value, list):
            raise ConfigError(f"{where}.value: op {op!r} expects a list, got {_describe(value)}")
        items = tuple(
            _parse_value(v, kind, schema, f"{where}.value[{i}]") for i, v in enumerate(value)
        )
        return ColumnCondition(column, op, items)
    parsed = _parse_value(value, kind, schema, f"{where}.value")
    if op in ORDER_OPS and isinstance(parsed, bool):
        raise ConfigError(f"{where}.value: op {op!r} needs a number or a string, got {value!r}")
    return ColumnCondition(column, op, parsed)


def _parse_value(value: Any, kind: str, schema: Schema, where: str) -> Any:
    if kind == "class":
        return resolve_class(value, schema.class_names, where)
    if value is None:
        raise ConfigError(f"{where}: null is not a value; use op is_null / not_null")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63 - 1:
        raise ConfigError(f"{where}: integer out of range, got {value!r}")
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or _is_nan(value):
            raise ConfigError(f"{where}: expected a number, got {_describe(value)}")
        return value
    if kind == "text":
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_describe(value)}")
        return value
    if not isinstance(value, (str, int, float, bool)):
        raise ConfigError(f"{where}: expected a string, number or boolean, got {_describe(value)}")
    if _is_nan(value):
        raise ConfigError(f"{where}: NaN never compares equal; use op is_null")
    return value


def _parse_group_count(body: Any, schema: Schema, where: str) -> GroupCount:
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where}: expected a mapping with class, op, value, got {_describe(body)}")
    unknown = sorted(str(k) for k in body if k not in ("class", "op", "value"))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; group_count has class, op, value")
    class_index = None
    if "class" in body:
        class_index = resolve_class(body["class"], schema.class_names, f"{where}.class")
    op = body.get("op")
    if not isinstance(op, str) or op not in _OPS:
        raise ConfigError(f"{where}.op: unknown op {op!r}; ops: {list(_OPS)}")
    value = body.get("value")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}.value: expected an integer >= 0, got {_describe(value)}")
    return GroupCount(op, value, class_index)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def columns_of(condition: Condition | None) -> set[str]:
    """Every column a condition reads (group columns are added by the caller)."""
    if condition is None:
        return set()
    if isinstance(condition, ColumnCondition):
        return {condition.column}
    if isinstance(condition, (AllOf, AnyOf)):
        return set().union(*(columns_of(c) for c in condition.items))
    if isinstance(condition, Not):
        return columns_of(condition.item)
    return set()


def column_conditions(condition: Condition | None) -> list[ColumnCondition]:
    if condition is None:
        return []
    if isinstance(condition, ColumnCondition):
        return [condition]
    if isinstance(condition, (AllOf, AnyOf)):
        return [c for item in condition.items for c in column_conditions(item)]
    if isinstance(condition, Not):
        return column_conditions(condition.item)
    return []


def uses_groups(condition: Condition | None) -> bool:
    if isinstance(condition, (GroupHas, GroupCount)):
        return True
    if isinstance(condition, (AllOf, AnyOf)):
        return any(uses_groups(c) for c in condition.items)
    if isinstance(condition, Not):
        return uses_groups(condition.item)
    return False


@dataclass
class RowView:
    """What conditions see: the table's columns, the current labels, who is still live.

    ``labels`` (N,) holds each row's current class (dropped rows keep their last one);
    ``group_codes`` (N,) numbers the groups, -1 where the group column is null.
    """

    column: Callable[[str], pd.Series]
    labels: np.ndarray
    live: np.ndarray
    group_codes: np.ndarray | None
    n_groups: int = 0


def evaluate(condition: Condition, rows: RowView) -> np.ndarray:
    """Boolean mask (N,) of the rows where `condition` holds."""
    if isinstance(condition, ColumnCondition):
        return compare(rows.column(condition.column), condition.op, condition.value)
    if isinstance(condition, AllOf):
        mask = np.ones(len(rows.labels), dtype=bool)
        for item in condition.items:
            mask &= evaluate(item, rows)
        return mask
    if isinstance(condition, AnyOf):
        mask = np.zeros(len(rows.labels), dtype=bool)
        for item in condition.items:
            mask |= evaluate(item, rows)
        return mask
    if isinstance(condition, Not):
        return ~evaluate(condition.item, rows)
    if isinstance(condition, GroupHas):
        mask = np.ones(len(rows.labels), dtype=bool)
        for class_index in condition.classes:
            mask &= _others_in_group(rows, rows.labels == class_index) >= 1
        return mask
    if isinstance(condition, GroupCount):
        if condition.class_index is None:
            carrying = np.ones(len(rows.labels), dtype=bool)
        else:
            carrying = rows.labels == condition.class_index
        return np.asarray(_OPS[condition.op](_others_in_group(rows, carrying), condition.value), dtype=bool)
    raise TypeError(f"not a condition: {condition!r}")


def compare(series: pd.Series, op: str, value: Any) -> np.ndarray:
    """``series <op> value`` as a bool mask; null cells match only ``is_null``."""
    null = series.isna().to_numpy(dtype=bool)
    if op == "is_null":
        return null
    if op == "not_null":
        return ~null
    mask = np.zeros(len(series), dtype=bool)
    present = series[~null]
    if op == "in":
        hit = present.isin(list(value))
    elif op == "not_in":
        hit = ~present.isin(list(value))
    else:
        hit = _OPS[op](present, value)
    mask[~null] = np.asarray(hit, dtype=bool)
    return mask


def _others_in_group(rows: RowView, carrying: np.ndarray) -> np.ndarray:
    """Per row (N,): how many *other* live rows of its group have `carrying` set."""
    n = len(rows.labels)
    if rows.group_codes is None or rows.n_groups == 0:
        return np.zeros(n, dtype=np.int64)
    codes = rows.group_codes
    grouped = codes >= 0
    counted = rows.live & carrying & grouped
    per_group = np.bincount(codes[counted], minlength=rows.n_groups)
    totals = np.where(grouped, per_group[np.where(grouped, codes, 0)], 0)
    return totals - counted.astype(np.int64)
