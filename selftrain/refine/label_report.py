"""Accounting of a multi-label round: its JSON rules report and the report's terminal table.

The report::

    generation, task, rows, kept, dropped
    empty_sets: kept images whose label set is empty
    order:      rule names in the order they ran
    rules:      one entry per rule (and built-in): name, kind (rule | builtin | corrections),
                enabled, matched, changed, dropped, exempted, weighted, marked_keep,
                sets_changed (rows whose set it changed), labels_added / labels_removed
                {class name: images}, duplicated, copies_added, [per_class, groups (balance:
                kept images per rarest-label group before it ran), description, note],
                [precision: {added, removed, labels, drop, overall}: {right, judged, precision}],
                [val_precision: the same, judged on the val split; user rules: skipped]
    labels:     {before (predicted sets, all rows), after (kept rows)}: {class name: images}
    [accuracy:  rows_with_truth, kept_with_truth, exact_match_before, exact_match_after]
    [val:       rows, min_rule_precision, skipped (rule names)]

A whole round (`selftrain.refine.label_round`) adds ``training_rows`` (sum of copies),
``labels.after_copies`` (kept images counted with their copies) and ``settings``.

Precision and accuracy appear only when the table carries the canary ``true_labels``;
it is read here, after refinement is finished, and never feeds back into the sets.
An added label is right when it is in the true set, a removed one when it is not
(``labels`` pools both); a drop is right when the image's set was not its true set;
``overall`` pools label moves and drops, the figure ``refine.min_rule_precision`` reads
on val (`selftrain.refine.val_check`), as in multiclass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from selftrain.refine.conditions import TRUTH_LABELS_COLUMN
from selftrain.refine.config import RefineConfig
from selftrain.refine.label_sets import LabelRuleStats, LabelSetState, judge_label_changes, read_label_sets
from selftrain.refine.report import fraction_text, percent_text, skipped_rules_lines, text_table


def label_report(
    config: RefineConfig,
    generation: int,
    stats: list[LabelRuleStats],
    before: np.ndarray,
    state: LabelSetState,
    pseudo_labels: pd.DataFrame,
) -> dict[str, Any]:
    """The JSON-serialisable report of one multi-label round.

    Args:
        before: (N, C) bool, the label sets the rules started from.
        state: the rows after every rule (sets, kept).
        pseudo_labels: the caller's table; its ``true_labels``, when present, is used
            for precision and accuracy only.
    """
    names = config.class_names
    kept = state.kept
    report: dict[str, Any] = {
        "generation": int(generation),
        "task": config.task,
        "rows": int(len(kept)),
        "kept": int(kept.sum()),
        "dropped": int(len(kept) - kept.sum()),
        "empty_sets": int((kept & ~state.sets.any(axis=1)).sum()),
        "order": [s.name for s in stats],
        "rules": [s.as_dict(names) for s in stats],
        "labels": {
            "before": dict(zip(names, before.sum(axis=0).astype(int).tolist())),
            "after": dict(zip(names, state.sets[kept].sum(axis=0).astype(int).tolist())),
        },
    }
    if TRUTH_LABELS_COLUMN in pseudo_labels.columns:
        frame = pseudo_labels.reset_index(drop=True)
        truth, known = read_label_sets(frame, TRUTH_LABELS_COLUMN, names, "pseudo_labels", allow_null=True)
        for entry, rule_stats in zip(report["rules"], stats):
            entry["precision"] = judge_label_changes(rule_stats, truth, known)
        kept_known = kept & known
        report["accuracy"] = {
            "rows_with_truth": int(known.sum()),
            "kept_with_truth": int(kept_known.sum()),
            "exact_match_before": exact_match_share(before, truth, known),
            "exact_match_after": exact_match_share(state.sets, truth, kept_known),
        }
    return report


def exact_match_share(sets: np.ndarray, truth: np.ndarray, rows: np.ndarray) -> float | None:
    """Share of `rows` whose (C,) set equals the true set exactly."""
    if not rows.any():
        return None
    return float((sets[rows] == truth[rows]).all(axis=1).mean())


def format_label_report(report: dict[str, Any]) -> str:
    """A plain-text table of a multi-label report: one row per rule, then label counts."""
    lines = [
        f"refine (multilabel), generation {report['generation']}: {report['rows']} images, "
        f"{report['kept']} kept, {report['dropped']} dropped, {report['empty_sets']} kept with no label"
    ]
    has_truth = "accuracy" in report
    has_val = "val" in report
    # A whole round's report (with balance's copies) shows the copies balance added.
    has_copies = "training_rows" in report
    header = ["rule", "matched", "changed", "dropped", "exempted", "added", "removed"]
    header += ["copies+"] if has_copies else []
    if has_truth:
        header += ["label precision", "drop precision"]
    if has_val:
        header += [f"val precision ({report['val']['rows']} val images)"]
    rows = []
    for entry in report["rules"]:
        suffix = " (skipped)" if entry.get("skipped") else "" if entry.get("enabled", True) else " (off)"
        row = [
            entry["name"] + suffix,
            *(str(entry[key]) for key in ("matched", "changed", "dropped", "exempted")),
            _moves(entry["labels_added"]),
            _moves(entry["labels_removed"]),
            *([str(entry["copies_added"])] if has_copies else []),
        ]
        if has_truth:
            precision = entry.get("precision")
            row += [fraction_text(precision["labels"]), fraction_text(precision["drop"])] if precision else ["-", "-"]
        if has_val:
            judged = entry.get("val_precision")
            row.append(fraction_text(judged["overall"]) if judged else "-")
        rows.append(row)
    lines += text_table(header, rows, numeric={1, 2, 3, 4, 7})
    lines += skipped_rules_lines(report)
    labels = report["labels"]
    lines.append("")
    lines += text_table(
        ["label", "before", "after"],
        [[name, str(labels["before"][name]), str(labels["after"][name])] for name in labels["before"]],
        numeric={1, 2},
    )
    if has_truth:
        acc = report["accuracy"]
        lines.append("")
        lines.append(
            f"exact label sets ({acc['rows_with_truth']} images with truth): "
            f"{percent_text(acc['exact_match_before'])} before -> {percent_text(acc['exact_match_after'])} after"
        )
    return "\n".join(lines)


def _moves(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {n}" for name, n in counts.items()) or "-"
