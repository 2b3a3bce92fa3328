"""Refine's input contract: check the round's table, the previous round and the rules' columns.

Everything `refine` reads is checked here before any rule runs, so a bad table fails
with one `DataError` naming the column and row, and a rule that could never match (an
unknown column, a number compared with text) fails before any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from selftrain.errors import ConfigError, DataError
from selftrain.refine.conditions import TRUTH_COLUMN, Schema, column_conditions
from selftrain.refine.config import RefineConfig

# What the infer stage's table must carry, what refine derives from it, what it adds.
REQUIRED_COLUMNS = ("item_id", "pred", "confidence", "margin", "entropy", "probs")
DERIVED_COLUMNS = ("second_pred", "second_confidence", "prev_pred", "prev_confidence")
RESULT_COLUMNS = ("label", "target", "weight", "kept", "copies", "rules", "dropped_by")


@dataclass(frozen=True)
class RefineContext:
    """What refine knows besides the table: the class names, the round, the round before."""

    class_names: tuple[str, ...]
    generation: int
    # The previous round's pseudo_labels table (item_id, pred, confidence, ...); None in round 1.
    previous: pd.DataFrame | None = None


def check_context(config: RefineConfig, context: RefineContext) -> None:
    """The context must be one and match the classes the config was parsed with."""
    if not isinstance(context, RefineContext):
        raise TypeError(f"context: expected a RefineContext, got {type(context).__name__}")
    if tuple(context.class_names) != config.class_names:
        raise ConfigError(
            f"refine: context.class_names {list(context.class_names)} differ from the classes the "
            f"config was parsed with {list(config.class_names)}"
        )
    if isinstance(context.generation, bool) or not isinstance(context.generation, (int, np.integer)):
        raise ConfigError(f"refine: context.generation must be an integer, got {context.generation!r}")


def row_name(frame: pd.DataFrame, i: int) -> str:
    """How an error message names row `i` of `frame`."""
    return f"row {i} (item_id {frame['item_id'].iloc[i]!r})"


def check_inputs(inputs: pd.DataFrame, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Check the contract columns; return pred (N,) int64 and probs (N, C) float64."""
    missing = [c for c in REQUIRED_COLUMNS if c not in inputs.columns]
    if missing:
        raise DataError(f"pseudo_labels: missing columns {missing}; has {list(inputs.columns)}")
    reserved = [c for c in (*DERIVED_COLUMNS, *RESULT_COLUMNS) if c in inputs.columns]
    if reserved:
        raise DataError(
            f"pseudo_labels: already has refinement columns {reserved}; refine reads the infer "
            "stage's table, not a refined one"
        )
    ids = inputs["item_id"]
    if ids.isna().any():
        raise DataError(f"pseudo_labels.item_id: null at row {int(np.flatnonzero(ids.isna().to_numpy())[0])}")
    duplicated = ids.duplicated()
    if duplicated.any():
        raise DataError(f"pseudo_labels.item_id: duplicate {ids[duplicated].iloc[0]!r}")
    pred = _class_column(inputs, "pred", num_classes, "pseudo_labels")
    for name in ("confidence", "margin", "entropy"):
        column = inputs[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise DataError(f"pseudo_labels.{name}: expected numbers, got dtype {column.dtype}")
        if column.isna().any():
            raise DataError(f"pseudo_labels.{name}: null at {row_name(inputs, int(np.flatnonzero(column.isna().to_numpy())[0]))}")
    return pred, _probs(inputs, num_classes)


def _class_column(frame: pd.DataFrame, name: str, num_classes: int, table: str) -> np.ndarray:
    column = frame[name]
    if column.isna().any():
        raise DataError(f"{table}.{name}: null at {row_name(frame, int(np.flatnonzero(column.isna().to_numpy())[0]))}")
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        raise DataError(f"{table}.{name}: expected class indices, got dtype {column.dtype}")
    values = column.to_numpy(dtype=np.float64)
    bad = (values != np.round(values)) | (values < 0) | (values >= num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{table}.{name}: {values[i]:g} at {row_name(frame, i)} is not a class index in [0, {num_classes - 1}]"
        )
    return values.astype(np.int64)


def _probs(inputs: pd.DataFrame, num_classes: int) -> np.ndarray:
    """(N, C) float64 from the list column; names the first bad row."""
    values = inputs["probs"].tolist()
    if not values:
        return np.zeros((0, num_classes), dtype=np.float64)
    rows = []
    for i, value in enumerate(values):
        try:
            row = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"pseudo_labels.probs: not a list of numbers at {row_name(inputs, i)}") from None
        if row.shape != (num_classes,):
            raise DataError(
                f"pseudo_labels.probs: {row_name(inputs, i)} has shape {row.shape}, expected "
                f"({num_classes},): one probability per class"
            )
        rows.append(row)
    probs = np.stack(rows)
    bad = ~np.isfinite(probs).all(axis=1) | (probs < 0).any(axis=1) | ~(probs.sum(axis=1) > 0)
    if bad.any():
        raise DataError(
            f"pseudo_labels.probs: {row_name(inputs, int(np.flatnonzero(bad)[0]))} is not a probability "
            "vector (finite, >= 0, positive sum)"
        )
    return probs


def previous_columns(inputs: pd.DataFrame, previous: Any, num_classes: int) -> tuple[pd.Series, pd.Series]:
    """prev_pred (Int64) and prev_confidence (float) per row, null where there is none."""
    n = len(inputs)
    prev_pred = pd.Series(pd.array([pd.NA] * n, dtype="Int64"))
    prev_confidence = pd.Series(np.full(n, np.nan))
    if previous is None:
        return prev_pred, prev_confidence
    if not isinstance(previous, pd.DataFrame):
        raise DataError(f"context.previous: expected a pandas DataFrame or None, got {type(previous).__name__}")
    missing = [c for c in ("item_id", "pred", "confidence") if c not in previous.columns]
    if missing:
        raise DataError(f"context.previous: missing columns {missing}; has {list(previous.columns)}")
    frame = previous[["item_id", "pred", "confidence"]].reset_index(drop=True)
    if frame["item_id"].duplicated().any():
        raise DataError(f"context.previous.item_id: duplicate {frame['item_id'][frame['item_id'].duplicated()].iloc[0]!r}")
    values = _class_column(frame, "pred", num_classes, "context.previous")
    confidence = frame["confidence"]
    if not pd.api.types.is_numeric_dtype(confidence) or pd.api.types.is_bool_dtype(confidence):
        raise DataError(f"context.previous.confidence: expected numbers, got dtype {confidence.dtype}")
    position = pd.Series(np.arange(len(frame)), index=pd.Index(frame["item_id"]))
    found = inputs["item_id"].map(position)
    has = found.notna().to_numpy(dtype=bool)
    rows = found[has].to_numpy(dtype=np.int64)
    prev_pred[has] = values[rows]
    prev_confidence[has] = confidence.to_numpy(dtype=np.float64)[rows]
    return prev_pred, prev_confidence


def without_truth(previous: pd.DataFrame | None) -> pd.DataFrame | None:
    """The previous round's table as a plug-in may see it: without ground truth."""
    if isinstance(previous, pd.DataFrame) and TRUTH_COLUMN in previous.columns:
        return previous.drop(columns=[TRUTH_COLUMN])
    return previous


def check_rule_columns(config: RefineConfig, inputs: pd.DataFrame) -> None:
    """Every column a rule or `group_by` names exists (in the table or derived)."""
    available = set(inputs.columns) | set(DERIVED_COLUMNS) | {"label", "weight"}
    for rule in config.rules:
        for column in sorted({c.column for c in column_conditions(rule.when)} - available):
            raise DataError(
                f"{rule.where}: column {column!r} is not in the pseudo-labels table; "
                f"columns: {list(inputs.columns)}"
            )
    if config.group_by is not None and config.group_by not in inputs.columns:
        raise DataError(
            f"refine.group_by: column {config.group_by!r} is not in the pseudo-labels table; "
            f"columns: {list(inputs.columns)}"
        )


def check_rule_types(config: RefineConfig, base: pd.DataFrame) -> None:
    """Refuse comparisons that could never match (a number against a text column)."""
    schema = Schema(config.class_names, config.extra_columns)
    for rule in config.rules:
        for condition in column_conditions(rule.when):
            # Class, number and text columns had their values checked at parse time.
            if schema.column_kind(condition.column) != "any" or condition.value is None:
                continue
            values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
            column = base[condition.column]
            if not column.notna().any():
                continue  # nothing to compare (empty or all-null): nothing can mismatch
            for value in values:
                if not _comparable(column, value):
                    raise DataError(
                        f"{rule.where}.when: column {condition.column!r} has dtype {column.dtype}, "
                        f"which cannot be compared with {value!r}"
                    )


def _comparable(column: pd.Series, value: Any) -> bool:
    dtype = column.dtype
    if dtype == object:
        return True
    if isinstance(value, str):
        return pd.api.types.is_string_dtype(dtype)
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
