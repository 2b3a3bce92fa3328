"""The summary tables of a round (overview, class counts, quantiles, rules, flips, canary); two rounds side by side."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from selftrain.inspection.canary import canary_tables, confusion_table, truth_accuracy
from selftrain.inspection.label_set_tables import LABEL_SET_TABLES, is_multilabel_table, summarize_label_round
from selftrain.inspection.flips import FLIP_PAIRS_SHOWN, flip_tables
from selftrain.inspection.rounds import RoundData, load_round, previous_predictions
from selftrain.inspection.rule_hits import rule_hit_table
from selftrain.inspection.views import class_counts, kept_mask, pseudo_labels_of, truth_of
from selftrain.paths import ProjectPaths

SCORE_COLUMNS = ("confidence", "margin", "entropy")
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
QUANTILE_COLUMNS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)
# Label of the row that pools every class in per-class tables.
ALL_CLASSES = "(all)"

# Table name -> (title, key columns that `compare_rounds` joins on).
SUMMARY_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "overview": ("Round overview", ("item",)),
    "class_counts": ("Class counts: teacher predictions vs kept pseudo-labels", ("class",)),
    "quantiles": ("Score quantiles per predicted class", ("class", "metric")),
    "rules": ("Rule hits", ("rule",)),
    "flips": ("Prediction flips vs the previous round", ()),
    "flip_pairs": (f"Top {FLIP_PAIRS_SHOWN} flips (previous -> current prediction)", ("from", "to")),
    "flip_matrix": ("Flip matrix (rows: previous prediction, columns: current)", ("previous",)),
    "confusion": ("Pseudo-labels vs truth (rows: truth, columns: pseudo-label)", ("truth",)),
    "canary_classes": ("Canary per class: pseudo-label precision and recall", ("class",)),
    "canary_overall": ("Canary overall: accuracy of teacher, kept and dropped rows", ("scope",)),
    "canary_drops": ("Canary per dropping rule: share of drops that were wrong", ("rule",)),
}


def round_summary(paths: ProjectPaths, k: int) -> dict[str, pd.DataFrame]:
    """Every summary table of round k, keyed as in `SUMMARY_TABLES`.

    Raises:
        RoundNotFoundError: round k has no table on disk; the message lists the rounds.
    """
    data = load_round(paths, k)
    if is_multilabel_table(data.table):
        return summarize_label_round(data)
    previous, source = previous_predictions(paths, data)
    return summarize_round(data, previous, source)


def summarize_round(
    data: RoundData, previous: pd.Series | None = None, previous_source: str = "none"
) -> dict[str, pd.DataFrame]:
    """The summary tables of an already loaded round (see `round_summary`).

    Args:
        data: the round.
        previous: the previous round's predictions indexed by item_id, if any.
        previous_source: where `previous` came from, for the flips table.
    """
    table, names = data.table, data.class_names
    flips, pairs, matrix = flip_tables(table, previous, names, previous_source)
    canary_classes, canary_overall, canary_drops = canary_tables(table, names)
    return {
        "overview": overview_table(data),
        "class_counts": class_count_table(data),
        "quantiles": score_quantile_table(table, names),
        "rules": rule_hit_table(data),
        "flips": flips,
        "flip_pairs": pairs,
        "flip_matrix": matrix,
        "confusion": confusion_table(table, names),
        "canary_classes": canary_classes,
        "canary_overall": canary_overall,
        "canary_drops": canary_drops,
    }


def overview_table(data: RoundData) -> pd.DataFrame:
    """Key facts of the round as item/value rows (what exists, how many kept, how right)."""
    table = data.table
    kept = kept_mask(table)
    truth = truth_of(table)
    items: list[tuple[str, Any]] = [("round", data.round)]
    if "teacher_gen" in table.columns and table["teacher_gen"].notna().any():
        teachers = sorted(int(g) for g in table["teacher_gen"].dropna().unique())
        items.append(("teacher_gen", ", ".join(str(g) for g in teachers)))
    items.append(("rows", len(table)))
    if kept is not None:
        items += [("kept", int(kept.sum())), ("dropped", int((~kept).sum()))]
        if "copies" in table.columns:
            items.append(("training_rows", int(table["copies"].fillna(0)[kept].sum())))
    if "confidence" in table.columns:
        items.append(("mean_confidence", float(table["confidence"].mean())))
    items.append(("rows_with_truth", 0 if truth is None else int(truth.notna().sum())))
    if truth is not None and kept is not None:
        items.append(("kept_accuracy", truth_accuracy(pseudo_labels_of(table)[kept], truth[kept])))
    items += [("refined_table", data.refined), ("rules_report", data.rules_report is not None)]
    return pd.DataFrame(items, columns=["item", "value"])


def class_count_table(data: RoundData) -> pd.DataFrame:
    """Per class: teacher predictions, kept pseudo-labels, and kept rows times their copies.

    Without a refined table the kept columns come from the rules report when it
    has class counts, else they are null.
    """
    table, names = data.table, data.class_names
    n = len(names)
    frame = pd.DataFrame({"class": list(names), "teacher": class_counts(table["pred"], n)})
    kept = kept_mask(table)
    if kept is not None:
        labels = pseudo_labels_of(table)
        frame["kept"] = class_counts(labels[kept], n)
        copies = table["copies"][kept] if "copies" in table.columns else None
        frame["kept_copies"] = class_counts(labels[kept], n, copies) if copies is not None else frame["kept"]
        frame["dropped"] = class_counts(table["pred"][~kept], n)
        return frame
    report_counts = _report_class_counts(data.rules_report, names)
    for column, key in (("kept", "after"), ("kept_copies", "after_copies")):
        frame[column] = pd.array(report_counts.get(key, [pd.NA] * n), dtype="Int64")
    return frame


def _report_class_counts(report: dict | None, names: tuple[str, ...]) -> dict[str, list[int]]:
    """``classes.{before,after,after_copies}`` of the rules report as lists in class order."""
    classes = (report or {}).get("classes")
    if not isinstance(classes, Mapping):
        return {}
    out = {}
    for key, counts in classes.items():
        if isinstance(counts, Mapping):
            out[key] = [int(counts.get(name, 0) or 0) for name in names]
        elif isinstance(counts, list) and len(counts) == len(names):
            out[key] = [int(c) for c in counts]
    return out


def score_quantile_table(table: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """Count, mean and quantiles of confidence/margin/entropy per teacher-predicted class."""
    columns = ["class", "metric", "count", "mean", *QUANTILE_COLUMNS]
    rows = []
    pred = table["pred"].to_numpy()
    groups = [(name, pred == i) for i, name in enumerate(names)] + [(ALL_CLASSES, np.ones(len(table), bool))]
    for metric in (m for m in SCORE_COLUMNS if m in table.columns):
        values = table[metric].astype("float64").to_numpy()
        for name, mask in groups:
            selected = values[mask]
            selected = selected[~np.isnan(selected)]
            stats = np.quantile(selected, QUANTILES).tolist() if selected.size else [np.nan] * len(QUANTILES)
            mean = float(selected.mean()) if selected.size else np.nan
            rows.append([name, metric, int(selected.size), mean, *stats])
    return pd.DataFrame(rows, columns=columns)


def compare_rounds(paths: ProjectPaths, j: int, k: int) -> dict[str, pd.DataFrame]:
    """The summary tables of rounds j and k side by side.

    Each table is joined on its key columns (`SUMMARY_TABLES`); every other column
    ``c`` appears as ``c@j`` next to ``c@k``. Keys present in only one round give
    nulls on the other side.
    """
    left, right = round_summary(paths, j), round_summary(paths, k)
    # Both rounds of one run share its task; the co-occurrence matrices compare cell by cell.
    tables = {**SUMMARY_TABLES, **LABEL_SET_TABLES}
    return {
        name: _side_by_side(left[name], right[name], keys, j, k)
        for name, (_, keys) in tables.items()
        if name in left and name in right
    }


def _side_by_side(a: pd.DataFrame, b: pd.DataFrame, keys: tuple[str, ...], j: int, k: int) -> pd.DataFrame:
    keys_list = list(keys)
    values = list(dict.fromkeys([c for c in [*a.columns, *b.columns] if c not in keys]))
    a = a.rename(columns={c: f"{c}@{j}" for c in values})
    b = b.rename(columns={c: f"{c}@{k}" for c in values})
    if not keys_list:
        joined = pd.concat([a.reset_index(drop=True), b.reset_index(drop=True)], axis=1)
    else:
        # Union of keys in first-seen order: an outer merge would sort class names.
        key_rows = pd.concat([a[keys_list], b[keys_list]]).drop_duplicates().reset_index(drop=True)
        joined = key_rows.merge(a, on=keys_list, how="left").merge(b, on=keys_list, how="left")
    ordered = keys_list + [f"{c}@{r}" for c in values for r in (j, k) if f"{c}@{r}" in joined.columns]
    return joined.reindex(columns=ordered)
