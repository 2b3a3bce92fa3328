"""Accounting of what each rule did, the round's JSON report and its terminal table.

The report (``rules_report.json``)::

    generation, rows, kept, dropped, training_rows (sum of copies)
    order:    rule names in the order they ran (user rules, then built-ins)
    settings: the refine section as applied (balance.resolved_per_class included)
    rules:    one entry per rule and built-in: name, kind (rule | plugin | builtin),
              enabled, matched, changed, dropped, exempted (drops a `keep` blocked),
              relabelled {"from->to": n}, weighted, marked_keep, thresholds_set,
              duplicated, copies_added, [per_class, description, note],
              [precision: {relabel, drop, overall: {right, judged, precision}}],
              [val_precision: the same, judged on the val split; user rules: skipped]
    classes:  {before (teacher preds, all rows), after (kept labels),
               after_copies (kept labels counted with copies)}: {class name: n}
    [accuracy: rows_with_truth, kept_with_truth, before, after, after_copies]
    [val: rows, min_rule_precision, skipped (rule names)]

Bracketed keys appear only when they apply; precision and accuracy only when the
table carries ground truth; val and val_precision when the teacher's val predictions
were given (`selftrain.refine.val_check`). A skipped rule keeps its place in
``rules`` (enabled false, skipped true, its val precision and a note) but not in
``order``: it did not run.

Ground truth (``true_label``) is read in exactly one place, `_truth_accounting`,
and only to score the rules after refinement is finished: it never feeds back
into labels, targets, weights or which rows are kept.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from selftrain.errors import DataError
from selftrain.refine.conditions import TRUTH_COLUMN
from selftrain.refine.config import RefineConfig
from selftrain.refine.label_sets import LabelRuleStats
from selftrain.refine.ood_config import ood_settings

if TYPE_CHECKING:  # val_check runs the engine, which imports this module
    from selftrain.refine.val_check import ValCheck


@dataclass
class RuleStats:
    """What one rule (user rule, plug-in or built-in) did during one refine run."""

    name: str
    kind: str  # "rule", "plugin" or "builtin"
    description: str = ""
    enabled: bool = True
    note: str = ""
    matched: int = 0  # live rows its condition selected (plug-ins: rows it changed)
    changed: int = 0  # rows that got its name appended to `rules`
    dropped: int = 0
    exempted: int = 0  # rows it would have dropped but an earlier `keep` protected
    relabelled: Counter = field(default_factory=Counter)  # (from, to) -> rows
    weighted: int = 0
    marked_keep: int = 0
    thresholds_set: int = 0
    duplicated: int = 0  # rows whose copies balance raised above 1
    copies_added: int = 0  # extra training rows balance added by duplication
    per_class: int | None = None  # balance only: the resolved per-class count
    # Row positions and labels for precision: what a drop removed, what a relabel chose.
    drop_rows: list[np.ndarray] = field(default_factory=list)
    drop_labels: list[np.ndarray] = field(default_factory=list)
    relabel_rows: list[np.ndarray] = field(default_factory=list)
    relabel_to: list[np.ndarray] = field(default_factory=list)

    def record_drop(self, rows: np.ndarray, labels: np.ndarray) -> None:
        self.dropped += len(rows)
        self.drop_rows.append(rows)
        self.drop_labels.append(labels)

    def record_relabel(self, rows: np.ndarray, old: np.ndarray, new: np.ndarray) -> None:
        for a, b in zip(old.tolist(), new.tolist()):
            self.relabelled[(a, b)] += 1
        self.relabel_rows.append(rows)
        self.relabel_to.append(new)

    def as_dict(self, class_names: tuple[str, ...]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "enabled": self.enabled,
            "matched": self.matched,
            "changed": self.changed,
            "dropped": self.dropped,
            "exempted": self.exempted,
            "relabelled": {
                f"{class_names[a]}->{class_names[b]}": n for (a, b), n in sorted(self.relabelled.items())
            },
            "weighted": self.weighted,
            "marked_keep": self.marked_keep,
            "thresholds_set": self.thresholds_set,
            "duplicated": self.duplicated,
            "copies_added": self.copies_added,
        }
        if self.per_class is not None:
            entry["per_class"] = self.per_class
        if self.description:
            entry["description"] = self.description
        if self.note:
            entry["note"] = self.note
        return entry


def build_report(
    config: RefineConfig,
    generation: int,
    stats: list[RuleStats],
    pred: np.ndarray,
    labels: np.ndarray,
    kept: np.ndarray,
    copies: np.ndarray,
    pseudo_labels: pd.DataFrame,
) -> dict[str, Any]:
    """The JSON-serialisable rules report of one round.

    Args:
        pred, labels, kept, copies: (N,) teacher predictions, final labels (a dropped
            row's last label), kept mask, training copies.
        pseudo_labels: the caller's table; its ground truth column (joined from the truth
            file by `refine_round`), when present, is
            used for precision and accuracy only.
    """
    names = config.class_names
    c = len(names)
    report: dict[str, Any] = {
        "generation": int(generation),
        "rows": int(len(pred)),
        "kept": int(kept.sum()),
        "dropped": int(len(pred) - kept.sum()),
        "training_rows": int(copies.sum()),
        "order": [s.name for s in stats],
        "settings": _settings(config, stats),
        "rules": [s.as_dict(names) for s in stats],
        "classes": {
            "before": _per_class(np.bincount(pred, minlength=c), names),
            "after": _per_class(np.bincount(labels[kept], minlength=c), names),
            "after_copies": _per_class(np.bincount(labels[kept], weights=copies[kept], minlength=c), names),
        },
    }
    if TRUTH_COLUMN in pseudo_labels.columns:
        _truth_accounting(report, stats, pred, labels, kept, copies, pseudo_labels, c)
    return report


def _settings(config: RefineConfig, stats: list[RuleStats]) -> dict[str, Any]:
    names = config.class_names
    balance = next((s for s in stats if s.name == "balance" and s.kind == "builtin"), None)
    return {
        "soft": config.soft,
        "temperature": config.temperature,
        "threshold": config.threshold,
        "class_thresholds": {names[i]: t for i, t in config.class_thresholds},
        "min_margin": config.min_margin,
        "max_entropy": config.max_entropy,
        "agreement": config.agreement,
        "balance": {
            "enabled": config.balance.enabled,
            "per_class": config.balance.per_class,
            "resolved_per_class": balance.per_class if balance is not None else None,
        },
        "group_by": config.group_by,
        "min_rule_precision": config.min_rule_precision,
        "ood": ood_settings(config.ood),
    }


def add_val_check(report: dict[str, Any], config: RefineConfig, check: ValCheck) -> dict[str, Any]:
    """`report` (a multiclass or multi-label round's) with each rule's val precision (a
    `val_check.ValCheck`) and its skipped rules back in params order among the user rules."""
    skipped = {rule.name: rule for rule in check.skipped}
    entries = {entry["name"]: entry for entry in report["rules"]}
    user = []
    for rule in config.rules:
        if rule.name in skipped:
            value = check.precision[rule.name]["overall"]["precision"]
            note = f"skipped: val precision {value:.2f} < refine.min_rule_precision {config.min_rule_precision}"
            stats_type = LabelRuleStats if config.multilabel else RuleStats
            entry = stats_type(name=rule.name, kind=rule.kind, description=rule.description, enabled=False, note=note)
            user.append({**entry.as_dict(config.class_names), "skipped": True})
        else:
            user.append({**entries.pop(rule.name), "skipped": False})
    # People's corrections ran first and stay first; the built-ins follow the user rules.
    first = [entry for entry in entries.values() if entry["kind"] == "corrections"]
    rules = first + user + [entry for entry in entries.values() if entry["kind"] != "corrections"]
    for entry in rules:
        entry["val_precision"] = check.precision.get(entry["name"])
    return {
        **report,
        "rules": rules,
        "val": {"rows": check.rows, "min_rule_precision": config.min_rule_precision, "skipped": list(skipped)},
    }


def _per_class(counts: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    return {name: int(round(n)) for name, n in zip(names, counts.tolist())}


def _truth_accounting(
    report: dict[str, Any],
    stats: list[RuleStats],
    pred: np.ndarray,
    labels: np.ndarray,
    kept: np.ndarray,
    copies: np.ndarray,
    pseudo_labels: pd.DataFrame,
    num_classes: int,
) -> None:
    """The one place that reads ground truth: precision per rule, accuracy before/after.

    A relabel is right when the new label equals the truth; a drop is right when the
    label the row carried when dropped (the teacher's pred unless a rule relabelled
    it first) differs from the truth. Rows whose truth is null are not judged.
    """
    column = pseudo_labels[TRUTH_COLUMN]
    known = column.notna().to_numpy(dtype=bool)
    truth = np.full(len(column), -1, dtype=np.int64)
    try:
        values = column[known].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"pseudo_labels.{TRUTH_COLUMN}: expected class indices, got dtype {column.dtype}") from None
    if values.size and (
        not np.all(values == np.round(values)) or values.min() < 0 or values.max() >= num_classes
    ):
        raise DataError(
            f"pseudo_labels.{TRUTH_COLUMN}: expected class indices in [0, {num_classes - 1}] or null"
        )
    truth[known] = values.astype(np.int64)

    for entry, rule in zip(report["rules"], stats):
        relabel = _judge(rule.relabel_rows, rule.relabel_to, truth, known, right_when_equal=True)
        drop = _judge(rule.drop_rows, rule.drop_labels, truth, known, right_when_equal=False)
        overall = {"right": relabel["right"] + drop["right"], "judged": relabel["judged"] + drop["judged"]}
        overall["precision"] = _ratio(overall["right"], overall["judged"])
        entry["precision"] = {"relabel": relabel, "drop": drop, "overall": overall}

    kept_known = kept & known
    report["accuracy"] = {
        "rows_with_truth": int(known.sum()),
        "kept_with_truth": int(kept_known.sum()),
        "before": _ratio(int((pred[known] == truth[known]).sum()), int(known.sum())),
        "after": _ratio(int((labels[kept_known] == truth[kept_known]).sum()), int(kept_known.sum())),
        "after_copies": _ratio(
            int(copies[kept_known][labels[kept_known] == truth[kept_known]].sum()),
            int(copies[kept_known].sum()),
        ),
    }


def _judge(
    rows: list[np.ndarray],
    chosen: list[np.ndarray],
    truth: np.ndarray,
    known: np.ndarray,
    right_when_equal: bool,
) -> dict[str, Any]:
    if not rows:
        return {"right": 0, "judged": 0, "precision": None}
    positions = np.concatenate(rows).astype(np.int64)
    values = np.concatenate(chosen).astype(np.int64)
    judged = known[positions]
    equal = values[judged] == truth[positions[judged]]
    right = int(equal.sum() if right_when_equal else (~equal).sum())
    return {"right": right, "judged": int(judged.sum()), "precision": _ratio(right, int(judged.sum()))}


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of the report: one row per rule, then class counts."""
    lines = [
        f"refine, generation {report['generation']}: {report['rows']} rows, {report['kept']} kept, "
        f"{report['dropped']} dropped, {report['training_rows']} training rows with copies"
    ]
    has_truth = "accuracy" in report
    has_val = "val" in report
    header = ["rule", "kind", "matched", "changed", "dropped", "exempted", "relabelled", "copies+"]
    if has_truth:
        header.append("precision")
    if has_val:
        header.append(f"val precision ({report['val']['rows']} val rows)")
    rows = []
    for entry in report["rules"]:
        relabelled = ", ".join(f"{k}: {n}" for k, n in entry["relabelled"].items()) or "-"
        name = entry["name"]
        if entry.get("skipped"):
            name += " (skipped)"
        elif not entry["enabled"]:
            name += " (off)"
        row = [
            name,
            entry["kind"],
            str(entry["matched"]),
            str(entry["changed"]),
            str(entry["dropped"]),
            str(entry["exempted"]),
            relabelled,
            str(entry["copies_added"]),
        ]
        if has_truth:
            row.append(fraction_text(entry["precision"]["overall"]) if "precision" in entry else "-")
        if has_val:
            judged = entry.get("val_precision")
            row.append(fraction_text(judged["overall"]) if judged else "-")
        rows.append(row)
    lines += text_table(header, rows, numeric={2, 3, 4, 5, 7})
    lines += skipped_rules_lines(report)

    classes = report["classes"]
    class_rows = [
        [name, str(classes["before"][name]), str(classes["after"][name]), str(classes["after_copies"][name])]
        for name in classes["before"]
    ]
    lines.append("")
    lines += text_table(["class", "before", "after", "after x copies"], class_rows, numeric={1, 2, 3})
    if has_truth:
        acc = report["accuracy"]
        lines.append("")
        lines.append(
            f"pseudo-label accuracy ({acc['rows_with_truth']} rows with truth): "
            f"{percent_text(acc['before'])} before -> {percent_text(acc['after'])} after "
            f"({percent_text(acc['after_copies'])} counting copies)"
        )
    return "\n".join(lines)


def skipped_rules_lines(report: dict[str, Any]) -> list[str]:
    """The line naming the rules the val check skipped (none when it skipped none)."""
    val = report.get("val")
    if not val or not val["skipped"]:
        return []
    return [
        f"skipped (val precision below refine.min_rule_precision {val['min_rule_precision']}): "
        + ", ".join(val["skipped"])
    ]


def fraction_text(judged: dict[str, Any]) -> str:
    """``{right, judged, precision}`` as ``0.67 (2/3)``, or ``-`` when nothing was judged."""
    if not judged["judged"]:
        return "-"
    return f"{judged['precision']:.2f} ({judged['right']}/{judged['judged']})"


def percent_text(value: float | None) -> str:
    """A ratio as a percentage, ``n/a`` when there is none."""
    return "n/a" if value is None else f"{100 * value:.1f}%"


def text_table(header: list[str], rows: list[list[str]], numeric: set[int]) -> list[str]:
    """Aligned plain-text lines: header, rule, rows; columns in `numeric` right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return [fmt(header), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]
