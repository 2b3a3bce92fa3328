"""Refine a multi-label round's label sets: the user's rules in params order, with per-rule accounting.

Each row is one image with a ``labels`` column (its predicted label set, a list of
class names). A rule's ``when`` may combine the label-set conditions
(``labels_has_all``, ``labels_has_any``, ``labels_count``, ``score_of``) with column
conditions and ``all``/``any``/``not``; its actions are ``add_label``, ``remove_label``
(both may be given: the removal happens first), ``drop``, ``weight`` and ``keep``.
Each rule sees the sets the rules before it left, and acts only on rows still kept.

Decisions where the issue was silent:

- ``score_of`` reads the model's probability of the class (its ``probs`` entry), so
  it has a value whether or not the class is in the set; a label a rule added keeps
  the model's score.
- An image whose set becomes empty is kept with an empty set: for binary cross
  entropy it is a valid negative for every class. A later rule
  ``{when: {labels_count: {op: "==", value: 0}}, drop: true}`` drops such images.
- A dropped image's ``labels`` is null in the refined table, as a dropped row's
  ``label`` is in multiclass rounds.

The canary truth (``true_labels``, a list of class names per row, null = unknown)
is removed before any rule runs and read only by the report's accounting
(`selftrain.refine.label_report`).
Built-in filters, balancing and training targets of a multi-label round are applied after
these rules by `selftrain.refine.label_round`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from selftrain.errors import ConfigError, DataError
from selftrain.refine.conditions import (
    TRUTH_COLUMN,
    TRUTH_LABELS_COLUMN,
    RowView,
    column_conditions,
    evaluate,
    label_set_forms,
)
from selftrain.refine.config import RefineConfig, Rule
from selftrain.refine.inputs import RefineContext, check_context, check_rule_types
from selftrain.refine.label_report import label_report
from selftrain.refine.label_sets import LabelRuleStats, LabelSetState, label_lists, read_label_sets
from selftrain.refine.rule_config import LABEL_SET_ACTIONS
from selftrain.refine.state import weight_and_keep

LABELS_COLUMN = "labels"
RESULT_COLUMNS = ("weight", "kept", "rules", "dropped_by")


@dataclass(frozen=True)
class LabelSetResult:
    """The refined table (input rows, ``labels`` after the rules, result columns) and the report."""

    table: pd.DataFrame
    report: dict


def refine_label_sets(pseudo_labels: pd.DataFrame, config: RefineConfig, context: RefineContext) -> LabelSetResult:
    """Apply a multi-label config's rules to one round's label sets.

    Args:
        pseudo_labels: one row per image: ``item_id``, ``labels`` (list of class
            names), ``probs`` (C per-class probabilities; read only by ``score_of``),
            any columns the rules read, and optionally ``true_labels``.
        config: from `parse_refine_config(..., task="multilabel")`.
        context: class names and generation (``previous`` is not read).

    Raises:
        ConfigError: the config is not multi-label, or its classes are not the context's.
        DataError: a column a rule reads is missing (named by rule and key), or a
            cell is malformed (named by row).
    """
    check_context(config, context)
    if not config.multilabel:
        raise ConfigError("refine: refine_label_sets needs a config parsed with task multilabel")
    if not isinstance(pseudo_labels, pd.DataFrame):
        raise DataError(f"pseudo_labels: expected a pandas DataFrame, got {type(pseudo_labels).__name__}")
    # Firewall: nothing below this line but the report's accounting sees ground truth.
    inputs = pseudo_labels.drop(columns=[TRUTH_COLUMN, TRUTH_LABELS_COLUMN], errors="ignore").reset_index(drop=True)
    check_label_columns(config, inputs)
    sets, _ = read_label_sets(inputs, LABELS_COLUMN, config.class_names, "pseudo_labels", allow_null=False)
    scores = rule_scores(config, inputs)
    check_rule_types(config, inputs)

    state = LabelSetState.start(sets)
    stats = [apply_label_rule(rule, inputs, state, scores) for rule in config.rules]

    table = label_set_table(pseudo_labels, config, state)
    report = label_report(config, context.generation, stats, sets, state, pseudo_labels)
    return LabelSetResult(table=table, report=report)


def label_set_table(pseudo_labels: pd.DataFrame, config: RefineConfig, state: LabelSetState) -> pd.DataFrame:
    """The caller's rows (same index and columns, truth removed) plus ``labels`` after the
    rules (null when dropped) and the result columns."""
    table = pseudo_labels.copy()
    index = table.index
    after = label_lists(state.sets, config.class_names)
    table[LABELS_COLUMN] = _objects([s if k else None for s, k in zip(after, state.kept.tolist())], index)
    table["weight"] = pd.Series(np.where(state.kept, state.weight, 0.0), index=index)
    table["kept"] = pd.Series(state.kept.copy(), index=index)
    table["rules"] = _objects([list(r) for r in state.rules], index)
    table["dropped_by"] = _objects(list(state.dropped_by), index)
    return table.drop(columns=[TRUTH_LABELS_COLUMN], errors="ignore")


def check_label_columns(config: RefineConfig, inputs: pd.DataFrame) -> None:
    """Every column a rule reads exists; a label-set key without a ``labels`` column names its rule."""
    columns = list(inputs.columns)
    for rule in config.rules:
        keys = [f"when.{form}" for form in label_set_forms(rule.when)]
        keys += [action for action in LABEL_SET_ACTIONS if getattr(rule, action) is not None]
        if keys and LABELS_COLUMN not in inputs.columns:
            raise DataError(
                f"{rule.where}.{keys[0]}: reads each image's label set, but the table has no "
                f"{LABELS_COLUMN!r} column (a multiclass table?); columns: {columns}"
            )
        if "score_of" in label_set_forms(rule.when) and "probs" not in inputs.columns:
            raise DataError(f"{rule.where}.when.score_of: reads 'probs', which the table lacks; columns: {columns}")
        for column in sorted({c.column for c in column_conditions(rule.when)} - set(columns) - {"weight"}):
            raise DataError(f"{rule.where}: column {column!r} is not in the pseudo-labels table; columns: {columns}")
    missing = [c for c in ("item_id", LABELS_COLUMN) if c not in inputs.columns]
    if missing:
        raise DataError(f"pseudo_labels: missing columns {missing}; has {columns}")
    reserved = [c for c in RESULT_COLUMNS if c in inputs.columns]
    if reserved:
        raise DataError(
            f"pseudo_labels: already has refinement columns {reserved}; refine reads the infer stage's table"
        )


def rule_scores(config: RefineConfig, inputs: pd.DataFrame) -> np.ndarray | None:
    """(N, C) per-class probabilities when a rule reads them (``score_of``), else None."""
    if any("score_of" in label_set_forms(rule.when) for rule in config.rules):
        return label_probs(inputs, config.num_classes)
    return None


def label_probs(inputs: pd.DataFrame, num_classes: int) -> np.ndarray:
    """(N, C) per-class probabilities from ``probs``; names the first bad row."""
    scores = np.zeros((len(inputs), num_classes), dtype=np.float64)
    for i, value in enumerate(inputs["probs"].tolist()):
        try:
            row = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            row = np.full(0, np.nan)
        if row.shape != (num_classes,) or not (np.isfinite(row) & (row >= 0) & (row <= 1)).all():
            raise DataError(
                f"pseudo_labels.probs: row {i} (item_id {inputs['item_id'].iloc[i]!r}) is not "
                f"{num_classes} probabilities in [0, 1]"
            )
        scores[i] = row
    return scores


def apply_label_rule(
    rule: Rule, inputs: pd.DataFrame, state: LabelSetState, scores: np.ndarray | None
) -> LabelRuleStats:
    """Evaluate one rule on the live rows and apply its actions to the matches."""
    stats = LabelRuleStats(rule.name, description=rule.description)

    def column(name: str) -> pd.Series:
        return pd.Series(state.weight) if name == "weight" else inputs[name]

    n = len(state.kept)
    rows = RowView(
        column=column,
        labels=np.full(n, -1, dtype=np.int64),  # no single class per row in a multi-label round
        live=state.kept,
        group_codes=None,
        label_sets=state.sets,
        scores=scores,
    )
    try:
        matched = evaluate(rule.when, rows) & state.kept
    except (TypeError, ValueError) as exc:
        raise DataError(f"{rule.where}.when: cannot be evaluated on this table: {exc}") from None
    stats.matched = int(matched.sum())
    changed = np.zeros(n, dtype=bool)
    if rule.drop:
        changed |= state.drop(matched, stats)
    moved = np.zeros(n, dtype=bool)
    if rule.remove_label is not None:
        moved |= state.move(matched, rule.remove_label, add=False, stats=stats)
    if rule.add_label is not None:
        moved |= state.move(matched, rule.add_label, add=True, stats=stats)
    stats.sets_changed = int(moved.sum())
    changed |= moved
    changed |= weight_and_keep(rule, state, matched, stats)
    state.note(changed, stats)
    return stats


def _objects(values: list, index: pd.Index) -> pd.Series:
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        array[i] = value
    return pd.Series(array, index=index, dtype=object)


__all__ = ["LabelSetResult", "refine_label_sets"]
