"""Canary audit: pseudo-label quality against ground truth, where the benchmark has it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from selftrain.inspection.flips import flip_matrix
from selftrain.inspection.views import class_counts, kept_mask, pseudo_labels_of, ratio, truth_of


CANARY_CLASS_COLUMNS = (
    "class", "truth", "teacher", "teacher_precision", "teacher_recall",
    "kept", "kept_correct", "precision", "recall",
)
CANARY_OVERALL_COLUMNS = ("scope", "rows", "with_truth", "correct", "accuracy", "wrong_share")
CANARY_DROP_COLUMNS = ("rule", "dropped", "with_truth", "wrong", "wrong_share")


def canary_tables(
    table: pd.DataFrame, names: tuple[str, ...]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Pseudo-label quality against ``true_label``: per class, overall, per dropping rule.

    Only rows whose truth is known are judged. Per class c:
    ``precision`` = kept rows labelled c that are truly c / kept rows labelled c;
    ``recall`` = kept rows labelled c that are truly c / rows truly c in the whole
    pool (a dropped row counts as missed). ``teacher_*`` are the same for the
    teacher's prediction over every row. Overall, a dropped row was rightly dropped
    when its pseudo-label (the teacher's pred) is wrong: ``wrong_share`` of the
    ``dropped`` scope.

    Returns empty tables (with their columns) when no row has truth.
    """
    truth = truth_of(table)
    if truth is None:
        return (
            pd.DataFrame(columns=list(CANARY_CLASS_COLUMNS)),
            pd.DataFrame(columns=list(CANARY_OVERALL_COLUMNS)),
            pd.DataFrame(columns=list(CANARY_DROP_COLUMNS)),
        )
    return (
        _canary_classes(table, truth, names),
        _canary_overall(table, truth),
        _canary_drops(table, truth),
    )


def _canary_classes(table: pd.DataFrame, truth: pd.Series, names: tuple[str, ...]) -> pd.DataFrame:
    n = len(names)
    known = truth.notna().to_numpy(dtype=bool)
    pred = table["pred"].astype("Int64")
    truth_counts = class_counts(truth[known], n)
    teacher = class_counts(pred[known], n)
    teacher_right = class_counts(pred[known & (pred == truth).fillna(False).to_numpy(bool)], n)
    frame = pd.DataFrame({"class": list(names), "truth": truth_counts, "teacher": teacher})
    frame["teacher_precision"] = [ratio(r, t) for r, t in zip(teacher_right, teacher)]
    frame["teacher_recall"] = [ratio(r, t) for r, t in zip(teacher_right, truth_counts)]
    kept = kept_mask(table)
    if kept is None:
        for column in ("kept", "kept_correct", "precision", "recall"):
            frame[column] = np.nan
        return frame
    labels = pseudo_labels_of(table)
    judged = kept & known
    right = judged & (labels == truth).fillna(False).to_numpy(bool)
    kept_counts = class_counts(labels[judged], n)
    kept_right = class_counts(labels[right], n)
    frame["kept"] = kept_counts
    frame["kept_correct"] = kept_right
    frame["precision"] = [ratio(r, k) for r, k in zip(kept_right, kept_counts)]
    frame["recall"] = [ratio(r, t) for r, t in zip(kept_right, truth_counts)]
    return frame


def _canary_overall(table: pd.DataFrame, truth: pd.Series) -> pd.DataFrame:
    scopes = [("teacher", np.ones(len(table), dtype=bool), table["pred"].astype("Int64"))]
    kept = kept_mask(table)
    if kept is not None:
        labels = pseudo_labels_of(table)
        scopes += [("kept", kept, labels), ("dropped", ~kept, labels)]
    rows = []
    for scope, mask, labels in scopes:
        judged = mask & truth.notna().to_numpy(dtype=bool)
        correct = int((labels[judged] == truth[judged]).sum())
        accuracy = ratio(correct, judged.sum())
        rows.append([scope, int(mask.sum()), int(judged.sum()), correct, accuracy, 1.0 - accuracy])
    return pd.DataFrame(rows, columns=list(CANARY_OVERALL_COLUMNS))


def _canary_drops(table: pd.DataFrame, truth: pd.Series) -> pd.DataFrame:
    if "dropped_by" not in table.columns:
        return pd.DataFrame(columns=list(CANARY_DROP_COLUMNS))
    by = table["dropped_by"]
    labels = pseudo_labels_of(table)
    rows = []
    for rule in dict.fromkeys(by.dropna().astype(str)):
        mask = (by.astype("str") == rule).to_numpy(dtype=bool) & by.notna().to_numpy(dtype=bool)
        judged = mask & truth.notna().to_numpy(dtype=bool)
        wrong = int((labels[judged] != truth[judged]).sum())
        rows.append([rule, int(mask.sum()), int(judged.sum()), wrong, ratio(wrong, judged.sum())])
    return pd.DataFrame(rows, columns=list(CANARY_DROP_COLUMNS))


def truth_accuracy(labels: pd.Series, truth: pd.Series) -> float:
    judged = truth.notna().to_numpy(dtype=bool)
    return ratio(int((labels[judged] == truth[judged]).sum()), judged.sum())


def confusion_table(table: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """(C, C) counts: rows the truth, columns the pseudo-label, over kept rows with truth
    (over every row's teacher prediction when the table was not refined); empty without truth."""
    truth = truth_of(table)
    if truth is None:
        return pd.DataFrame(columns=["truth", *names])
    kept = kept_mask(table)
    mask = truth.notna().to_numpy(dtype=bool) & (kept if kept is not None else True)
    labels = pseudo_labels_of(table) if kept is not None else table["pred"].astype("Int64")
    matrix = flip_matrix(
        truth[mask].to_numpy(dtype=np.int64), labels[mask].to_numpy(dtype=np.int64), len(names)
    )
    frame = pd.DataFrame(matrix, columns=list(names))
    frame.insert(0, "truth", list(names))
    return frame
