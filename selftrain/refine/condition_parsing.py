"""Rule conditions parsed from params data: validated, class names resolved to indices.

A condition is one of

- ``{column: <name>, op: <op>, value: <v>}`` — compare one column with a value;
- ``{all: [<cond>, ...]}``, ``{any: [<cond>, ...]}``, ``{not: <cond>}`` — combine;
- ``{group_has: [<class>, ...]}`` — every listed class is the current label of at
  least one *other* live row of the row's group (rows sharing the ``group_by`` value);
- ``{group_count: {class: <class>, op: <op>, value: <int>}}`` — how many other live
  rows of the group carry that class (``class`` omitted: how many other live rows).

Multi-label runs only (``task: multilabel``), over the image's current label set:

- ``{labels_has_all: [<class>, ...]}`` / ``{labels_has_any: [<class>, ...]}`` — every /
  at least one listed class is in the set;
- ``{labels_count: {op: <op>, value: <int>}}`` — the size of the set;
- ``{score_of: {label: <class>, op: <op>, value: <p>}}`` — the model's probability of
  that class (its ``probs`` entry), whether the class is in the set or not.

A label-set condition in a multiclass run, or a group condition in a multi-label
one, is refused here with the rule's key path.

Class columns (``pred``, ``prev_pred``, ``second_pred``, ``label``) take class names
or indices, resolved to indices here. Every problem raises one `ConfigError` naming
the key path.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from selftrain.errors import ConfigError
from selftrain.refine.conditions import (
    ALL_OPS,
    COMPARISONS,
    CONDITION_FORMS,
    LABEL_SET_FORMS,
    NULL_OPS,
    ORDER_OPS,
    SET_OPS,
    TRUTH_COLUMN,
    AllOf,
    AnyOf,
    ColumnCondition,
    Condition,
    GroupCount,
    GroupHas,
    LabelsCount,
    LabelsHasAll,
    LabelsHasAny,
    Not,
    Schema,
    ScoreOf,
    TRUTH_LABELS_COLUMN,
)


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
    if form in LABEL_SET_FORMS:
        return _parse_label_set(form, body, schema, f"{where}.{form}")
    if schema.multilabel:
        raise ConfigError(
            f"{where}.{form}: group conditions compare one class per row; a multi-label run "
            "reads each image's own label set (labels_has_all, labels_has_any, labels_count)"
        )
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
    if column in (TRUTH_COLUMN, TRUTH_LABELS_COLUMN):
        raise ConfigError(
            f"{where}.column: {column!r} is ground truth and may never be read by rules"
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
    if not isinstance(op, str) or op not in COMPARISONS:
        raise ConfigError(f"{where}.op: unknown op {op!r}; ops: {list(COMPARISONS)}")
    value = body.get("value")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}.value: expected an integer >= 0, got {_describe(value)}")
    return GroupCount(op, value, class_index)


def _parse_label_set(form: str, body: Any, schema: Schema, where: str) -> Condition:
    if not schema.multilabel:
        raise ConfigError(
            f"{where}: a label-set condition needs task multilabel (each image's `labels` set); "
            "this run is multiclass"
        )
    if form in ("labels_has_all", "labels_has_any"):
        if isinstance(body, (str, int)) and not isinstance(body, bool):
            body = [body]
        if not isinstance(body, list) or not body:
            raise ConfigError(f"{where}: expected a non-empty list of classes, got {_describe(body)}")
        classes = tuple(resolve_class(c, schema.class_names, f"{where}[{i}]") for i, c in enumerate(body))
        return LabelsHasAll(classes) if form == "labels_has_all" else LabelsHasAny(classes)
    keys = ("op", "value") if form == "labels_count" else ("label", "op", "value")
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where}: expected a mapping with {', '.join(keys)}, got {_describe(body)}")
    unknown = sorted(str(k) for k in body if k not in keys)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; {form} has {', '.join(keys)}")
    missing = [k for k in keys if k not in body]
    if missing:
        raise ConfigError(f"{where}.{missing[0]}: required key is missing")
    op = body["op"]
    if not isinstance(op, str) or op not in COMPARISONS:
        raise ConfigError(f"{where}.op: unknown op {op!r}; ops: {list(COMPARISONS)}")
    value = body["value"]
    if form == "labels_count":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}.value: expected an integer >= 0, got {_describe(value)}")
        return LabelsCount(op, value)
    class_index = resolve_class(body["label"], schema.class_names, f"{where}.label")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}.value: expected a probability in [0, 1], got {_describe(value)}")
    return ScoreOf(class_index, op, float(value))


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"
