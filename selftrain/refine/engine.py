"""Refine one round's pseudo-labels: user rules, then built-ins, then targets.

Order of application (each step sees what the previous ones did):

0. human corrections (`corrections`): applied first; a corrected row is exempt
   from every step below (see that module);
1. derived columns: ``second_pred``/``second_confidence`` from ``probs``;
   ``prev_pred``/``prev_confidence`` from ``context.previous`` by ``item_id``;
2. the user's ``refine.rules``, in params order (condition rules and plug-ins), so
   a relabel happens before the per-class threshold of the new class is applied,
   and ``keep`` can protect rows from the built-in filters;
3. built-in filters: ``ood`` (ood_score above ``refine.ood``'s threshold), ``threshold`` (confidence below the threshold of the row's
   current label: a rule's override, else ``class_thresholds``, else ``threshold``),
   ``margin``, ``entropy``, ``agreement`` (pred differs from prev_pred; rows with no
   previous prediction are not judged);
4. ``balance``: classes above ``per_class`` keep their ``keep``-exempt rows, then the
   most confident (ties: input order) and drop the rest; classes below it raise
   ``copies`` so the class totals ``per_class`` training rows;
5. targets from the final labels: soft (softmax(log(p) / T)) unless the row was
   relabelled away from its pred, or hard (one-hot), by ``refine.soft``.

Actions apply only to rows still kept: a dropped row is final, ``dropped_by`` names
the first rule that dropped it. Ground truth (``true_label``) is removed from the
table before any rule runs and is handed only to the report's accounting.

This module runs the steps and applies condition rules; the input checks live in
`inputs`, the row state in `state`, plug-ins in `plugins`, the built-ins in
`builtin_rules`, targets and the output table in `output`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from selftrain.errors import ConfigError, DataError
from selftrain.refine.builtin_rules import apply_agreement, apply_balance, apply_limit, apply_threshold
from selftrain.refine.conditions import TRUTH_COLUMN, RowView, evaluate, uses_groups
from selftrain.refine.config import RefineConfig, Rule
from selftrain.refine.corrections import Corrections, apply_corrections
from selftrain.refine.inputs import (
    RefineContext,
    check_context,
    check_inputs,
    check_rule_columns,
    check_rule_types,
    previous_columns,
    without_truth,
)
from selftrain.refine.ood import apply_ood
from selftrain.refine.output import refined_table, training_targets
from selftrain.refine.plugins import apply_plugin
from selftrain.refine.report import RuleStats, build_report
from selftrain.refine.state import RowState, weight_and_keep


@dataclass(frozen=True)
class RefineResult:
    """The refined table (input rows plus refinement columns) and the rules report."""

    table: pd.DataFrame
    report: dict


def refine(
    pseudo_labels: pd.DataFrame,
    config: RefineConfig,
    context: RefineContext,
    corrections: Corrections | None = None,
) -> RefineResult:
    """Apply the rules and built-ins to one round's pseudo-labels.

    Args:
        pseudo_labels: the infer stage's table, one row per unlabeled item.
        config: from `parse_refine_config`.
        context: class names, generation and the previous round's table.
        corrections: people's labels and drops by item_id (`read_corrections`); none if None.

    Returns:
        The table (same rows and order, all input columns plus the refinement
        columns) and the JSON-serialisable rules report.

    Raises:
        DataError: the table (or context.previous) lacks a column or holds bad values.
        ConfigError: the context's class names are not the config's.
    """
    check_context(config, context)
    if config.multilabel:
        raise ConfigError(
            "refine: the config was parsed for task multilabel; a multi-label round's label sets "
            "are refined by selftrain.refine.label_rules.refine_label_sets"
        )
    if not isinstance(pseudo_labels, pd.DataFrame):
        raise DataError(f"pseudo_labels: expected a pandas DataFrame, got {type(pseudo_labels).__name__}")
    # Firewall: nothing below this line but the report's accounting sees ground truth.
    inputs = pseudo_labels.drop(columns=[TRUTH_COLUMN], errors="ignore").reset_index(drop=True)
    pred, probs = check_inputs(inputs, config.num_classes)
    check_rule_columns(config, inputs)

    base = inputs.copy(deep=False)
    second_pred, second_confidence = _second_best(probs, pred)
    base["second_pred"] = pd.array(second_pred, dtype="Int64")
    base["second_confidence"] = second_confidence
    prev_pred, prev_confidence = previous_columns(inputs, context.previous, config.num_classes)
    base["prev_pred"] = prev_pred
    base["prev_confidence"] = prev_confidence
    check_rule_types(config, base)

    group_codes, n_groups = _groups(config, base)
    plugin_context = dataclasses.replace(context, previous=without_truth(context.previous))
    state = RowState.start(pred)
    # Without a corrections file (direct calls, tests) the report has no `corrections` entry.
    correction_stats, corrected = apply_corrections(corrections or Corrections(), base["item_id"], state)
    stats: list[RuleStats] = [] if corrections is None else [correction_stats]
    corrected.hide(state)
    for rule in config.rules:
        if rule.plugin is not None:
            stats.append(apply_plugin(rule, base, state, plugin_context, config.num_classes))
        else:
            stats.append(_apply_rule(rule, base, state, group_codes, n_groups))
    stats.append(apply_ood(config.ood, base, state))
    confidence = base["confidence"].to_numpy(dtype=np.float64)
    stats.append(apply_threshold(config, confidence, state))
    margin = base["margin"].to_numpy(dtype=np.float64)
    entropy = base["entropy"].to_numpy(dtype=np.float64)
    stats.append(apply_limit("margin", config.min_margin, lambda bound: margin < bound, state))
    stats.append(apply_limit("entropy", config.max_entropy, lambda bound: entropy > bound, state))
    stats.append(apply_agreement(config, context.previous is not None, pred, prev_pred, state))
    stats.append(apply_balance(config, confidence, state))
    corrected.restore(state)

    # A person's label is not a guess: a corrected row trains on its one-hot target.
    targets = training_targets(config, probs, pred, state, hard=corrected.held)
    table = refined_table(pseudo_labels, base, context.previous is not None, state, targets)
    report = build_report(
        config, context.generation, stats, pred, state.labels, state.kept, state.copies, pseudo_labels
    )
    return RefineResult(table=table, report=report)


def _second_best(probs: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best class other than pred and its probability, (N,) each; ties go to the lower index."""
    masked = probs.copy()
    masked[np.arange(len(pred)), pred] = -np.inf
    second = masked.argmax(axis=1)
    return second.astype(np.int64), probs[np.arange(len(pred)), second]


def _groups(config: RefineConfig, base: pd.DataFrame) -> tuple[np.ndarray | None, int]:
    """(N,) group code per row (-1: no group) and the group count; None when no rule uses groups."""
    if config.group_by is None or not any(uses_groups(r.when) for r in config.rules):
        return None, 0
    try:
        codes, uniques = pd.factorize(base[config.group_by], use_na_sentinel=True)
    except TypeError as exc:
        raise DataError(f"refine.group_by: column {config.group_by!r} cannot form groups: {exc}") from None
    return np.asarray(codes, dtype=np.int64), len(uniques)


def _apply_rule(
    rule: Rule, base: pd.DataFrame, state: RowState, group_codes: np.ndarray | None, n_groups: int
) -> RuleStats:
    """Evaluate a condition rule on the live rows and apply its actions to the matches."""
    stats = RuleStats(rule.name, "rule", description=rule.description)

    def column(name: str) -> pd.Series:
        if name == "label":
            return pd.Series(pd.array(state.labels, dtype="Int64"))
        if name == "weight":
            return pd.Series(state.weight)
        return base[name]

    rows = RowView(column=column, labels=state.labels, live=state.kept, group_codes=group_codes, n_groups=n_groups)
    try:
        matched = evaluate(rule.when, rows) & state.kept
    except (TypeError, ValueError) as exc:
        raise DataError(f"{rule.where}.when: cannot be evaluated on this table: {exc}") from None
    stats.matched = int(matched.sum())
    changed = np.zeros(len(matched), dtype=bool)
    if rule.drop:
        changed |= state.drop(matched, stats)
    if rule.relabel is not None:
        changed |= state.relabel(matched, np.full(len(matched), rule.relabel, dtype=np.int64), stats)
    if rule.threshold:
        for i in np.flatnonzero(matched).tolist():
            old = state.thresholds[i]
            new = _merge_threshold(old, rule.threshold)
            if new != old:
                state.thresholds[i] = new
                changed[i] = True
                stats.thresholds_set += 1
    changed |= weight_and_keep(rule, state, matched, stats)
    state.note(changed, stats)
    return stats


def _merge_threshold(
    old: dict[int | None, float] | None, spec: tuple[tuple[int | None, float], ...]
) -> dict[int | None, float]:
    # A scalar override replaces everything; a per-class one adds to what is there.
    if spec[0][0] is None:
        return {None: spec[0][1]}
    merged = dict(old or {})
    merged.update(spec)
    return merged



__all__ = ["RefineResult", "refine"]
