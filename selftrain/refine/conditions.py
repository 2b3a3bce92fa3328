"""Rule conditions: their types, what they read, and their evaluation as boolean masks.

A condition compares one column with a value (`ColumnCondition`), combines others
(`AllOf`, `AnyOf`, `Not`), counts evidence in the row's group (`GroupHas`,
`GroupCount`), or reads one image's label set in a multi-label round (`LabelsHasAll`,
`LabelsHasAny`, `LabelsCount`, `ScoreOf`); `selftrain.refine.condition_parsing` builds
them from params data.

Nothing here evaluates strings: an operator is a key into `COMPARISONS`. A null cell
matches only ``is_null`` (every other comparison, ``!=`` and ``not_in`` included, is
false on it; ``not`` inverts the whole result).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np
import pandas as pd


# Ground truth of benchmark rows; rules may never read it (see refine.engine).
TRUTH_COLUMN = "true_label"
# The same for multi-label rows: the true label set (see refine.label_rules).
TRUTH_LABELS_COLUMN = "true_labels"

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

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
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
ALL_OPS = (*COMPARISONS, *SET_OPS, *NULL_OPS)
COMBINATORS = ("all", "any", "not")
GROUP_FORMS = ("group_has", "group_count")
# Read the image's current label set (and the model's per-class scores): multi-label only.
LABEL_SET_FORMS = ("labels_has_all", "labels_has_any", "labels_count", "score_of")
CONDITION_FORMS = ("column", *COMBINATORS, *GROUP_FORMS, *LABEL_SET_FORMS)


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


@dataclass(frozen=True)
class LabelsHasAll:
    classes: tuple[int, ...]


@dataclass(frozen=True)
class LabelsHasAny:
    classes: tuple[int, ...]


@dataclass(frozen=True)
class LabelsCount:
    op: str
    value: int


@dataclass(frozen=True)
class ScoreOf:
    """The model's probability of one class (``probs``), predicted in the set or not."""

    class_index: int
    op: str
    value: float


LABEL_SET_CONDITIONS = {
    LabelsHasAll: "labels_has_all",
    LabelsHasAny: "labels_has_any",
    LabelsCount: "labels_count",
    ScoreOf: "score_of",
}

Condition = Union[
    ColumnCondition, AllOf, AnyOf, Not, GroupHas, GroupCount, LabelsHasAll, LabelsHasAny, LabelsCount, ScoreOf
]


@dataclass(frozen=True)
class Schema:
    """What a condition may name: the dataset's classes and the table's columns."""

    class_names: tuple[str, ...]
    # Metadata columns the manifest carries (``group_id``, ``source``, ...).
    extra_columns: tuple[str, ...] = ()
    group_by: str | None = None
    # The run's task: label-set conditions and actions exist only in multi-label runs.
    multilabel: bool = False

    @property
    def known_columns(self) -> tuple[str, ...]:
        base = (*TEXT_COLUMNS, *CLASS_COLUMNS, *NUMBER_COLUMNS)
        extra = tuple(c for c in self.extra_columns if c not in base and c not in (TRUTH_COLUMN, TRUTH_LABELS_COLUMN))
        return tuple(sorted(base + extra))

    def column_kind(self, column: str) -> str:
        if column in CLASS_COLUMNS:
            return "class"
        if column in NUMBER_COLUMNS:
            return "number"
        if column in TEXT_COLUMNS:
            return "text"
        return "any"


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


def label_set_forms(condition: Condition | None) -> list[str]:
    """The label-set condition keys (``labels_has_all``, ...) `condition` uses, in order."""
    if condition is None:
        return []
    if isinstance(condition, (AllOf, AnyOf)):
        return [form for item in condition.items for form in label_set_forms(item)]
    if isinstance(condition, Not):
        return label_set_forms(condition.item)
    form = LABEL_SET_CONDITIONS.get(type(condition))
    return [form] if form is not None else []


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

    ``labels`` (N,) holds each row's current class (dropped rows keep their last one;
    -1 in multi-label rounds, which have no single class);
    ``group_codes`` (N,) numbers the groups, -1 where the group column is null.
    Multi-label rounds only: ``label_sets`` (N, C) bool, True where the class is in
    the image's current set; ``scores`` (N, C) the model's per-class probabilities.
    """

    column: Callable[[str], pd.Series]
    labels: np.ndarray
    live: np.ndarray
    group_codes: np.ndarray | None
    n_groups: int = 0
    label_sets: np.ndarray | None = None
    scores: np.ndarray | None = None


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
        return np.asarray(COMPARISONS[condition.op](_others_in_group(rows, carrying), condition.value), dtype=bool)
    if isinstance(condition, (LabelsHasAll, LabelsHasAny, LabelsCount, ScoreOf)):
        return _evaluate_label_set(condition, rows)
    raise TypeError(f"not a condition: {condition!r}")


def _evaluate_label_set(condition: Condition, rows: RowView) -> np.ndarray:
    if rows.label_sets is None:
        raise ValueError(f"{LABEL_SET_CONDITIONS[type(condition)]} needs the image's label sets (a multi-label round)")
    sets = rows.label_sets  # (N, C) bool
    if isinstance(condition, LabelsHasAll):
        return sets[:, list(condition.classes)].all(axis=1)
    if isinstance(condition, LabelsHasAny):
        return sets[:, list(condition.classes)].any(axis=1)
    if isinstance(condition, LabelsCount):
        return np.asarray(COMPARISONS[condition.op](sets.sum(axis=1), condition.value), dtype=bool)
    if rows.scores is None:
        raise ValueError("score_of needs the per-class probabilities (probs)")
    return np.asarray(COMPARISONS[condition.op](rows.scores[:, condition.class_index], condition.value), dtype=bool)


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
        hit = COMPARISONS[op](present, value)
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
