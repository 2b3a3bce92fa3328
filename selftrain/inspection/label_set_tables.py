"""The summary tables of a multilabel round: label frequency before/after rules, co-occurrence, rule hits, changed sets.

A multilabel round's table (`selftrain.infer`, `selftrain.refine`) holds per image the
teacher's predicted set ``pred_labels`` and, once refined, the set after the rules
``labels`` (null for a dropped image), ``kept`` and ``rules``. Where the truth file
knows an unlabeled image's set (``true_labels``, the digits-mosaic canary) the
tables add label-level precision and recall and the exact-match ratio; the sets
never feed back into training from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from selftrain.inspection.rounds import RoundData
from selftrain.inspection.views import kept_mask, ratio, rules_lists
from selftrain.refine.label_report import exact_match_share
from selftrain.label_columns import LABELS_COLUMN, TRUE_LABELS_COLUMN, split_labels

PREDICTED_COLUMN = "pred_labels"
# Changed sets listed in full; the rest are counted in the overview.
CHANGED_SHOWN = 20

# Table name -> (title, key columns that `compare_rounds` joins on).
LABEL_SET_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "label_overview": ("Round overview (multilabel)", ("item",)),
    "label_counts": ("Label frequency: teacher's sets vs sets after rules (kept images)", ("label",)),
    "cooccurrence": ("Co-occurrence of predicted labels (images predicting both)", ("label",)),
    "label_rules": ("Rule hits on label sets", ("rule",)),
    "changed_sets": (f"Images whose set the rules changed (first {CHANGED_SHOWN})", ()),
}


def is_multilabel_table(table: pd.DataFrame) -> bool:
    """Whether a round table is a multilabel round's (it has predicted label sets)."""
    return PREDICTED_COLUMN in table.columns


def set_matrix(cells: Sequence[Any], class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """((N, C) bool membership, (N,) bool known) of label-set cells (lists or "a|b"; null unknown).

    Names that are not classes are ignored (a table from another class list).
    """
    index = {name: i for i, name in enumerate(class_names)}
    sets = np.zeros((len(cells), len(class_names)), dtype=bool)
    known = np.zeros(len(cells), dtype=bool)
    for row, cell in enumerate(cells):
        names = split_labels(cell)
        if names is None:
            continue
        known[row] = True
        for name in names:
            if name in index:
                sets[row, index[name]] = True
    return sets, known


@dataclass(frozen=True)
class RoundSets:
    """A multilabel round's label sets as (N, C) bool matrices, one row per image."""

    predicted: np.ndarray  # the teacher's sets (`pred_labels`)
    kept: np.ndarray | None  # (N,) images the rules kept; None before refine
    after: np.ndarray | None  # the sets after the rules; None before refine
    truth: np.ndarray | None  # the canary's true sets; None without a canary
    known: np.ndarray | None  # (N,) images whose true set is known

    @property
    def refined(self) -> bool:
        return self.kept is not None and self.after is not None

    @property
    def has_truth(self) -> bool:
        return self.truth is not None and self.known is not None


def round_sets(table: pd.DataFrame, names: Sequence[str]) -> RoundSets:
    """The sets of a round's table: teacher's, after the rules (refined rounds) and true (canary)."""
    predicted, _ = set_matrix(table[PREDICTED_COLUMN].tolist(), names)
    kept = kept_mask(table)
    after = None
    if kept is not None and LABELS_COLUMN in table.columns:
        after, _ = set_matrix(table[LABELS_COLUMN].tolist(), names)
    truth = known = None
    if TRUE_LABELS_COLUMN in table.columns:
        truth, known = set_matrix(table[TRUE_LABELS_COLUMN].tolist(), names)
        if not known.any():
            truth = known = None
    return RoundSets(predicted, kept, after, truth, known)


def summarize_label_round(data: RoundData) -> dict[str, pd.DataFrame]:
    """Every table of `LABEL_SET_TABLES` for a loaded multilabel round."""
    table, names = data.table, data.class_names
    sets = round_sets(table, names)
    return {
        "label_overview": label_overview(data.round, sets),
        "label_counts": label_counts(names, sets),
        "cooccurrence": cooccurrence(names, sets.predicted),
        "label_rules": label_rule_table(data.rules_report),
        "changed_sets": changed_sets(table, names, sets),
    }


def label_overview(round_: int, sets: RoundSets) -> pd.DataFrame:
    """Key facts as item/value rows: images, kept, labels per image, exact match with the canary."""
    predicted, kept, after = sets.predicted, sets.kept, sets.after
    items: list[tuple[str, Any]] = [("round", round_), ("images", len(predicted))]
    items.append(("labels_per_image_teacher", float(predicted.sum(axis=1).mean()) if len(predicted) else None))
    items.append(("empty_sets_teacher", int((~predicted.any(axis=1)).sum())))
    if sets.refined:
        items += [("kept", int(kept.sum())), ("dropped", int((~kept).sum()))]
        items.append(("labels_per_image_after", float(after[kept].sum(axis=1).mean()) if kept.any() else None))
        items.append(("sets_changed_by_rules", int((kept & (after != predicted).any(axis=1)).sum())))
    items.append(("images_with_truth", 0 if sets.known is None else int(sets.known.sum())))
    if sets.has_truth:
        items.append(("exact_match_teacher", exact_match_share(predicted, sets.truth, sets.known)))
        if sets.refined:
            items.append(("exact_match_kept", exact_match_share(after, sets.truth, sets.known & kept)))
    return pd.DataFrame(items, columns=["item", "value"])


def label_counts(names: Sequence[str], sets: RoundSets) -> pd.DataFrame:
    """Per label: images whose teacher set has it, kept images whose final set has it, and
    with the canary the label precision and recall of both."""
    predicted, kept, after, truth, known = sets.predicted, sets.kept, sets.after, sets.truth, sets.known
    frame = pd.DataFrame({"label": list(names), "teacher": predicted.sum(axis=0).astype(np.int64)})
    if sets.refined:
        frame["after_rules"] = after[kept].sum(axis=0).astype(np.int64)
    if sets.has_truth:
        frame["true"] = truth[known].sum(axis=0).astype(np.int64)
        frame["precision_teacher"], frame["recall_teacher"] = _precision_recall(predicted, truth, known)
        if sets.refined:
            frame["precision_after"], frame["recall_after"] = _precision_recall(after, truth, known & kept)
    return frame


def cooccurrence(names: Sequence[str], predicted: np.ndarray) -> pd.DataFrame:
    """(C, C) images whose predicted set holds both labels; the diagonal counts each label."""
    counts = predicted.astype(np.int64).T @ predicted.astype(np.int64)
    frame = pd.DataFrame(counts, columns=list(names))
    frame.insert(0, "label", list(names))
    return frame


def label_rule_table(report: dict | None) -> pd.DataFrame:
    """One row per rule of a multilabel rules report: hits, label moves, with the canary the
    label and drop precision on the pool, and with val predictions the val precision."""
    rules = (report or {}).get("rules") or []
    rows = []
    for entry in rules:
        if not isinstance(entry, dict) or "labels_added" not in entry:
            continue  # a multiclass report's entry
        precision = entry.get("precision") or {}
        val = (entry.get("val_precision") or {}).get("overall") or {}
        rows.append(
            {
                "rule": entry.get("name") + (" (skipped)" if entry.get("skipped") else ""),
                "matched": entry.get("matched"),
                "sets_changed": entry.get("sets_changed", entry.get("changed")),
                "dropped": entry.get("dropped"),
                "added": _moves(entry.get("labels_added") or {}),
                "removed": _moves(entry.get("labels_removed") or {}),
                "label_precision": (precision.get("labels") or {}).get("precision"),
                "labels_judged": (precision.get("labels") or {}).get("judged"),
                "drop_precision": (precision.get("drop") or {}).get("precision"),
                # Judged on the val split (truth known), what refine.min_rule_precision reads.
                "val_precision": val.get("precision"),
                "val_judged": val.get("judged"),
            }
        )
    return pd.DataFrame(rows)


def changed_sets(table: pd.DataFrame, names: Sequence[str], sets: RoundSets) -> pd.DataFrame:
    """The first `CHANGED_SHOWN` images whose set the rules changed or that they dropped:
    the set before and after, the rules that matched, and the true set where known."""
    predicted, kept, after, truth, known = sets.predicted, sets.kept, sets.after, sets.truth, sets.known
    if not sets.refined:
        return pd.DataFrame()
    rules = rules_lists(table) or [[] for _ in range(len(table))]
    touched = ((after != predicted).any(axis=1) & kept) | (~kept & np.array([bool(r) for r in rules]))
    labels = np.asarray(names, dtype=object)
    rows = []
    for i in np.flatnonzero(touched)[:CHANGED_SHOWN]:
        row = {
            "item_id": table["item_id"].iloc[i],
            "before": "|".join(labels[predicted[i]]),
            "after": "|".join(labels[after[i]]) if kept[i] else "(dropped)",
            "rules": ", ".join(rules[i]),
        }
        if sets.has_truth:
            row["true"] = "|".join(labels[truth[i]]) if known[i] else None
        rows.append(row)
    return pd.DataFrame(rows)


def _precision_recall(sets: np.ndarray, truth: np.ndarray, rows: np.ndarray) -> tuple[list, list]:
    """Per class label precision and recall of `sets` against `truth` over `rows` (NaN where undefined)."""
    s, t = sets[rows], truth[rows]
    tp = (s & t).sum(axis=0)
    precision = [ratio(a, b) for a, b in zip(tp, s.sum(axis=0))]
    recall = [ratio(a, b) for a, b in zip(tp, t.sum(axis=0))]
    return precision, recall


def _moves(counts: dict) -> str:
    return ", ".join(f"{name}: {n}" for name, n in counts.items()) or "-"
