"""Refine one multi-label round: the user's rules over label sets, the built-ins, then targets.

The infer stage's table (one row per image: ``item_id``, ``probs`` (C sigmoid
probabilities), ``pred_labels`` (the classes at their thresholds), ``min_margin``,
``mean_binary_entropy``, [``ood_score``], metadata) becomes the refined table: the same
rows and columns plus ``labels`` (the set after every step, null when dropped),
``target`` (C floats), ``weight``, ``kept``, ``copies``, ``rules`` and ``dropped_by``.

Order, as in multiclass (`selftrain.refine.engine`): people's corrections
(`selftrain.refine.label_corrections`), the user's rules in params order
(`selftrain.refine.label_rules`, starting from ``pred_labels``), then the built-ins
(`selftrain.refine.label_builtins` says what each means for a label set), then the
targets (`selftrain.refine.output.label_set_targets`). The canary ``true_labels`` is
removed before any step and read only by the report (`selftrain.refine.label_report`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from selftrain.errors import ConfigError, DataError
from selftrain.refine.conditions import TRUTH_COLUMN, TRUTH_LABELS_COLUMN
from selftrain.refine.config import RefineConfig
from selftrain.refine.inputs import RefineContext, check_context, check_rule_types, row_name
from selftrain.refine.label_builtins import apply_agreement, apply_balance, apply_limit, apply_ood, threshold_step
from selftrain.refine.label_corrections import LabelCorrections, apply_label_corrections, restore_corrected
from selftrain.refine.label_report import label_report
from selftrain.refine.label_rules import (
    LABELS_COLUMN,
    LabelSetResult,
    apply_label_rule,
    check_label_columns,
    label_probs,
    label_set_table,
)
from selftrain.refine.label_sets import LabelSetState, read_label_sets
from selftrain.refine.ood_config import ood_settings
from selftrain.refine.output import object_series, label_set_targets

PREDICTED_COLUMN = "pred_labels"
REQUIRED_COLUMNS = ("item_id", "probs", PREDICTED_COLUMN, "min_margin", "mean_binary_entropy")
RESULT_COLUMNS = ("target", "weight", "kept", "copies", "rules", "dropped_by")


def refine_multilabel(
    pseudo_labels: pd.DataFrame,
    config: RefineConfig,
    context: RefineContext,
    corrections: LabelCorrections | None = None,
) -> LabelSetResult:
    """Apply a multi-label config's rules and built-ins to one round's pseudo-labels.

    Args:
        pseudo_labels: the infer stage's table (see the module docstring); may carry
            ``true_labels`` (lists of class names, None = unknown) for the report.
        config: from `parse_refine_config(..., task="multilabel")`.
        context: class names, generation, and the previous round's table (its
            ``pred_labels``, for ``refine.agreement``) or None.
        corrections: people's sets and drops by item_id (`read_label_corrections`),
            applied before every rule; none if None (and no report entry).

    Raises:
        ConfigError: the config is not multi-label or its classes are not the context's.
        DataError: a column is missing or a cell is malformed, named by column and row.
    """
    check_context(config, context)
    if not config.multilabel:
        raise ConfigError("refine: refine_multilabel needs a config parsed with task multilabel")
    if not isinstance(pseudo_labels, pd.DataFrame):
        raise DataError(f"pseudo_labels: expected a pandas DataFrame, got {type(pseudo_labels).__name__}")
    # Firewall: nothing below this line but the report's accounting sees ground truth.
    inputs = pseudo_labels.drop(columns=[TRUTH_COLUMN, TRUTH_LABELS_COLUMN], errors="ignore").reset_index(drop=True)
    _check_inputs(inputs)
    # The pool's own `labels` (the manifest's, null for unlabeled rows) is replaced by the
    # teacher's sets: the rules read and change `labels`.
    inputs[LABELS_COLUMN] = inputs[PREDICTED_COLUMN]
    check_label_columns(config, inputs)
    predicted, _ = read_label_sets(inputs, PREDICTED_COLUMN, config.class_names, "pseudo_labels", allow_null=False)
    probs = label_probs(inputs, config.num_classes)  # (N, C)
    margin = _numbers(inputs, "min_margin")
    entropy = _numbers(inputs, "mean_binary_entropy")
    previous = previous_sets(inputs, context.previous, config.class_names)
    check_rule_types(config, inputs)

    state = LabelSetState.start(predicted)
    correction_stats, held = apply_label_corrections(corrections or LabelCorrections({}), inputs["item_id"], state)
    stats = [] if corrections is None else [correction_stats]
    stats += [apply_label_rule(rule, inputs, state, probs) for rule in config.rules]
    stats.append(apply_ood(config.ood, inputs, state))
    stats.append(threshold_step())
    stats.append(apply_limit("margin", config.min_margin, lambda bound: margin < bound, state))
    stats.append(apply_limit("entropy", config.max_entropy, lambda bound: entropy > bound, state))
    stats.append(apply_agreement(config.agreement, predicted, previous, state))
    stats.append(apply_balance(config, margin, state))
    restore_corrected(held, state)

    table = label_set_table(pseudo_labels, config, state)
    targets = label_set_targets(config, probs, predicted, state.sets, state.kept, hard=held)
    table["target"] = object_series(targets, table.index)
    table["copies"] = pd.Series(state.copies.copy(), index=table.index)
    report = label_report(config, context.generation, stats, predicted, state, pseudo_labels)
    kept = state.kept
    report["training_rows"] = int(state.copies.sum())
    report["labels"]["after_copies"] = dict(
        zip(config.class_names, (state.sets[kept] * state.copies[kept, None]).sum(axis=0).astype(int).tolist())
    )
    report["settings"] = _settings(config, stats)
    return LabelSetResult(table=table, report=report)


def _check_inputs(inputs: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in inputs.columns]
    if missing:
        raise DataError(
            f"pseudo_labels: missing columns {missing} of a multi-label round; has {list(inputs.columns)} "
            "(a multiclass table? task must be the infer stage's)"
        )
    reserved = [c for c in RESULT_COLUMNS if c in inputs.columns]
    if reserved:
        raise DataError(
            f"pseudo_labels: already has refinement columns {reserved}; refine reads the infer stage's table"
        )
    ids = inputs["item_id"]
    if ids.isna().any():
        raise DataError(f"pseudo_labels.item_id: null at row {int(np.flatnonzero(ids.isna().to_numpy())[0])}")
    if ids.duplicated().any():
        raise DataError(f"pseudo_labels.item_id: duplicate {ids[ids.duplicated()].iloc[0]!r}")


def _numbers(inputs: pd.DataFrame, name: str) -> np.ndarray:
    """(N,) float64 of a numeric column with no nulls; names the first bad row."""
    column = inputs[name]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise DataError(f"pseudo_labels.{name}: expected numbers, got dtype {column.dtype}")
    if column.isna().any():
        raise DataError(f"pseudo_labels.{name}: null at {row_name(inputs, int(np.flatnonzero(column.isna().to_numpy())[0]))}")
    return column.to_numpy(dtype=np.float64)


def previous_sets(
    inputs: pd.DataFrame, previous: pd.DataFrame | None, class_names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray] | None:
    """The previous round's predicted set of each image, (N, C) bool, and the (N,) mask of
    images it saw; None when there is no previous round."""
    if previous is None:
        return None
    if not isinstance(previous, pd.DataFrame):
        raise DataError(f"context.previous: expected a pandas DataFrame or None, got {type(previous).__name__}")
    missing = [c for c in ("item_id", PREDICTED_COLUMN) if c not in previous.columns]
    if missing:
        raise DataError(f"context.previous: missing columns {missing}; has {list(previous.columns)}")
    frame = previous[["item_id", PREDICTED_COLUMN]].drop_duplicates("item_id").reset_index(drop=True)
    sets, _ = read_label_sets(frame, PREDICTED_COLUMN, class_names, "context.previous", allow_null=False)
    position = pd.Series(np.arange(len(frame)), index=pd.Index(frame["item_id"]))
    found = inputs["item_id"].map(position)
    known = found.notna().to_numpy(dtype=bool)
    aligned = np.zeros((len(inputs), len(class_names)), dtype=bool)
    aligned[known] = sets[found[known].to_numpy(dtype=np.int64)]
    return aligned, known


def _settings(config: RefineConfig, stats: list) -> dict:
    balance = next((s for s in stats if s.name == "balance" and s.kind == "builtin"), None)
    return {
        "soft": config.soft,
        "temperature": config.temperature,
        "min_margin": config.min_margin,
        "max_entropy": config.max_entropy,
        "agreement": config.agreement,
        "balance": {
            "enabled": config.balance.enabled,
            "per_class": config.balance.per_class,
            "resolved_per_class": balance.per_class if balance is not None else None,
            "by": "rarest label",
        },
        "ood": ood_settings(config.ood),
    }


__all__ = ["refine_multilabel", "previous_sets"]
