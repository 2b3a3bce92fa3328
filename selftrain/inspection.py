"""Per-round inspection of pseudo-labels: what the teacher said, what the rules did, how right it was.

Everything here reads the round artifacts (DESIGN.md, "Artifacts per round") and
returns pandas tables; `render_summary` is the only function that prints. The
artifact columns only grow, so every reader checks for a column before using it
and returns an empty table (with its columns) when the data behind it is absent:
no ``true_label`` means no canary, no ``refined.parquet`` means no kept counts,
no ``rules_report.json`` means rule hits are counted from the table itself.

A row's *pseudo-label* is its final ``label`` where refinement set one, else the
teacher's ``pred``: dropped rows have a null ``label``, and the label they would
have carried is the teacher's prediction.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from selftrain.data import CLASSES_FILE, TRUTH_COLUMN
from selftrain.errors import DataError, SelftrainError
from selftrain.paths import ProjectPaths

SCORE_COLUMNS = ("confidence", "margin", "entropy")
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
QUANTILE_COLUMNS = tuple(f"q{round(q * 100):02d}" for q in QUANTILES)
# Label of the row that pools every class in per-class tables.
ALL_CLASSES = "(all)"
FLIP_PAIRS_SHOWN = 10
HISTORY_COLUMNS = ("round", "teacher_gen", "pred", "confidence", "label", "rules", "kept", "dropped_by")

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


class RoundNotFoundError(SelftrainError):
    """A round was asked for that has no pseudo-label table on disk."""


class ItemNotFoundError(SelftrainError):
    """An item id appears in no round's table."""


@dataclass(frozen=True)
class RoundData:
    """One round's artifacts as read from disk.

    Attributes:
        round: the round k (1..N).
        table: ``refined.parquet`` when it exists (with any column it lacks taken
            from the ``pseudo_labels/`` table), else the ``pseudo_labels/`` table.
        refined: whether `table` went through refinement (has kept/label columns).
        rules_report: the parsed ``rules_report.json``, or None when absent.
        class_names: index -> name.
    """

    round: int
    table: pd.DataFrame
    refined: bool
    rules_report: dict | None
    class_names: tuple[str, ...]


# ---------------------------------------------------------------------------
# Finding and reading rounds


def available_rounds(paths: ProjectPaths) -> list[int]:
    """Rounds 1..N that have a pseudo-label or refined table on disk, ascending."""
    data_dir = paths.round_dir(0).parent
    if not data_dir.is_dir():
        return []
    rounds = []
    for child in data_dir.iterdir():
        match = re.fullmatch(r"gen(\d+)", child.name)
        if not match or int(match.group(1)) < 1:
            continue
        k = int(match.group(1))
        if paths.pseudo_labels(k).exists() or paths.refined(k).exists():
            rounds.append(k)
    return sorted(rounds)


def check_round(paths: ProjectPaths, k: int) -> None:
    """Raise `RoundNotFoundError` naming the rounds on disk unless round k is one of them."""
    rounds = available_rounds(paths)
    if k in rounds:
        return
    on_disk = ", ".join(str(r) for r in rounds) if rounds else "none (run the pipeline first)"
    why = " (round 0 is the teacher: it has no pseudo-labels)" if k == 0 else ""
    raise RoundNotFoundError(f"no round {k}{why}; rounds on disk: {on_disk}")


def load_round(paths: ProjectPaths, k: int) -> RoundData:
    """Read round k's tables and rules report.

    Raises:
        RoundNotFoundError: round k has no table on disk.
        DataError: a table or the report cannot be read, or lacks item_id/pred.
    """
    check_round(paths, k)
    pseudo = _read_table(paths.pseudo_labels(k)) if paths.pseudo_labels(k).exists() else None
    refined = _read_table(paths.refined(k)) if paths.refined(k).exists() else None
    if refined is None:
        table = pseudo
    elif pseudo is None:
        table = refined
    else:
        table = _add_missing_columns(refined, pseudo)
    return RoundData(
        round=k,
        table=table,
        refined=refined is not None,
        rules_report=_read_rules_report(paths.rules_report(k)),
        class_names=_class_names(paths, table),
    )


def _read_table(path: Path, **kwargs: Any) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read table: {exc}") from exc
    missing = [c for c in ("item_id", "pred") if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing required column(s) {missing}")
    return table


def _add_missing_columns(refined: pd.DataFrame, pseudo: pd.DataFrame) -> pd.DataFrame:
    """Refined rows with any pseudo-label column they lack (e.g. `true_label`), by item_id."""
    missing = [c for c in pseudo.columns if c not in refined.columns]
    if not missing:
        return refined
    extra = pseudo[["item_id", *missing]].drop_duplicates("item_id")
    return refined.merge(extra, on="item_id", how="left")


def _read_rules_report(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read rules report: {exc}") from exc
    # An older or hand-written report may be a bare list of per-rule entries.
    if isinstance(report, list):
        return {"rules": report}
    return report if isinstance(report, dict) else None


def _class_names(paths: ProjectPaths, table: pd.DataFrame) -> tuple[str, ...]:
    """Names from classes.json, padded with index names for any larger index the table uses."""
    classes_path = paths.prepared_dir / CLASSES_FILE
    names: tuple[str, ...] = ()
    if classes_path.exists():
        try:
            names = tuple(str(n) for n in json.loads(classes_path.read_text()))
        except (OSError, ValueError) as exc:
            raise DataError(f"{classes_path}: cannot read class list: {exc}") from exc
    needed = _max_class_index(table) + 1
    return names + tuple(str(i) for i in range(len(names), needed))


def _max_class_index(table: pd.DataFrame) -> int:
    highest = -1
    for column in ("pred", "label", TRUTH_COLUMN):
        if column in table.columns and table[column].notna().any():
            highest = max(highest, int(table[column].max()))
    if "probs" in table.columns and len(table):
        highest = max(highest, len(table["probs"].iloc[0]) - 1)
    return highest


def previous_predictions(paths: ProjectPaths, data: RoundData) -> tuple[pd.Series | None, str]:
    """Predictions of the round before `data`, by item_id, and where they came from.

    Round k-1's table is the source when it is on disk; otherwise the refined
    table's ``prev_pred`` column (refinement's agreement input); otherwise none.
    """
    k = data.round - 1
    for path in (paths.pseudo_labels(k), paths.refined(k)) if k >= 1 else ():
        if path.exists():
            previous = _read_table(path, columns=["item_id", "pred"]).drop_duplicates("item_id")
            return previous.set_index("item_id")["pred"], f"round {k}"
    if "prev_pred" in data.table.columns and data.table["prev_pred"].notna().any():
        known = data.table[data.table["prev_pred"].notna()].drop_duplicates("item_id")
        return known.set_index("item_id")["prev_pred"], "prev_pred column"
    return None, "none"


# ---------------------------------------------------------------------------
# Row-level views shared by the tables


def pseudo_labels_of(table: pd.DataFrame) -> pd.Series:
    """Each row's pseudo-label (Int64): refinement's `label` where set, else the teacher's `pred`."""
    pred = table["pred"].astype("Int64")
    if "label" not in table.columns:
        return pred
    return table["label"].astype("Int64").fillna(pred)


def kept_mask(table: pd.DataFrame) -> np.ndarray | None:
    """(N,) bool of kept rows, or None when the table was not refined."""
    if "kept" not in table.columns:
        return None
    return table["kept"].astype("boolean").fillna(False).to_numpy(dtype=bool)


def truth_of(table: pd.DataFrame) -> pd.Series | None:
    """Ground truth (Int64, null where unknown), or None when no row has it."""
    if TRUTH_COLUMN not in table.columns or not table[TRUTH_COLUMN].notna().any():
        return None
    return table[TRUTH_COLUMN].astype("Int64")


def rules_lists(table: pd.DataFrame) -> list[list[str]] | None:
    """Each row's `rules` as a plain list (Parquet gives arrays), or None without the column."""
    if "rules" not in table.columns:
        return None
    return [_as_list(v) for v in table["rules"]]


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _class_counts(values: pd.Series, n: int, weights: pd.Series | None = None) -> np.ndarray:
    """(n,) rows per class index; indices outside 0..n-1 and nulls are ignored."""
    present = values.notna().to_numpy(dtype=bool)
    idx = values[present].to_numpy(dtype=np.int64)
    w = None if weights is None else weights[present].to_numpy(dtype=np.float64)
    inside = (idx >= 0) & (idx < n)
    counts = np.bincount(idx[inside], weights=None if w is None else w[inside], minlength=n)
    return np.rint(counts).astype(np.int64)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else float("nan")


# ---------------------------------------------------------------------------
# The summary tables


def round_summary(paths: ProjectPaths, k: int) -> dict[str, pd.DataFrame]:
    """Every summary table of round k, keyed as in `SUMMARY_TABLES`.

    Raises:
        RoundNotFoundError: round k has no table on disk; the message lists the rounds.
    """
    data = load_round(paths, k)
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
        items.append(("kept_accuracy", _accuracy(pseudo_labels_of(table)[kept], truth[kept])))
    items += [("refined_table", data.refined), ("rules_report", data.rules_report is not None)]
    return pd.DataFrame(items, columns=["item", "value"])


def class_count_table(data: RoundData) -> pd.DataFrame:
    """Per class: teacher predictions, kept pseudo-labels, and kept rows times their copies.

    Without a refined table the kept columns come from the rules report when it
    has class counts, else they are null.
    """
    table, names = data.table, data.class_names
    n = len(names)
    frame = pd.DataFrame({"class": list(names), "teacher": _class_counts(table["pred"], n)})
    kept = kept_mask(table)
    if kept is not None:
        labels = pseudo_labels_of(table)
        frame["kept"] = _class_counts(labels[kept], n)
        copies = table["copies"][kept] if "copies" in table.columns else None
        frame["kept_copies"] = _class_counts(labels[kept], n, copies) if copies is not None else frame["kept"]
        frame["dropped"] = _class_counts(table["pred"][~kept], n)
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


# ---------------------------------------------------------------------------
# Rule hits


RULE_HIT_COLUMNS = ("rule", "source", "kind", "matched", "changed", "dropped", "relabelled")


def rule_hit_table(data: RoundData) -> pd.DataFrame:
    """One row per rule: from ``rules_report.json`` when it has per-rule entries, else
    counted from the refined table's ``rules``/``dropped_by`` columns.

    Report entries are flattened: ``relabelled`` ``{"a->b": n}`` becomes a total plus
    a ``relabelled_pairs`` text, ``precision.{overall,drop,relabel}.precision`` become
    ``precision``, ``drop_precision``, ``relabel_precision``.
    """
    entries = _report_rule_entries(data.rules_report)
    if entries:
        rows = [{"rule": name, "source": "rules_report", **_flatten_rule_entry(e)} for name, e in entries]
        frame = pd.DataFrame(rows)
        leading = [c for c in RULE_HIT_COLUMNS if c in frame.columns]
        return frame[leading + [c for c in frame.columns if c not in leading]]
    return _rule_hits_from_table(data.table)


def _report_rule_entries(report: dict | None) -> list[tuple[str, dict]]:
    """(name, entry) pairs from the report's ``rules`` list (or {name: entry} mapping)."""
    rules = (report or {}).get("rules")
    if isinstance(rules, Mapping):
        return [(str(name), entry) for name, entry in rules.items() if isinstance(entry, Mapping)]
    if isinstance(rules, list):
        named = []
        for i, entry in enumerate(rules):
            if isinstance(entry, Mapping):
                named.append((str(entry.get("name", entry.get("rule", f"rule {i}"))), entry))
        return named
    return []


def _flatten_rule_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in entry.items():
        if key in ("name", "rule"):
            continue
        if key == "relabelled" and isinstance(value, Mapping):
            flat["relabelled"] = int(sum(int(n) for n in value.values()))
            flat["relabelled_pairs"] = ", ".join(f"{pair}: {n}" for pair, n in value.items())
        elif key == "precision" and isinstance(value, Mapping):
            for part, judged in value.items():
                column = "precision" if part == "overall" else f"{part}_precision"
                flat[column] = judged.get("precision") if isinstance(judged, Mapping) else judged
        elif isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in value.items() if not isinstance(v, (Mapping, list))})
        elif isinstance(value, list):
            flat[key] = ", ".join(str(v) for v in value)
        else:
            flat[key] = value
    # JSON null precision (nothing judged) reads as NaN, like the table-derived numbers.
    for column in [c for c in flat if c.endswith("precision")]:
        flat[column] = np.nan if flat[column] is None else flat[column]
    return flat


def _rule_hits_from_table(table: pd.DataFrame) -> pd.DataFrame:
    """Rule hits counted from the table: rows touched, dropped, relabelled away from pred."""
    rules = rules_lists(table)
    dropped_by = table["dropped_by"] if "dropped_by" in table.columns else None
    if rules is None and dropped_by is None:
        return pd.DataFrame(columns=["rule", "source", "changed", "dropped", "relabelled"])
    rules = rules if rules is not None else [[] for _ in range(len(table))]
    drop_names = [] if dropped_by is None else [d for d in dropped_by.dropna().astype(str)]
    names = list(dict.fromkeys([r for row in rules for r in row] + drop_names))
    relabelled = (pseudo_labels_of(table) != table["pred"].astype("Int64")).fillna(False).to_numpy(bool)
    rows = []
    for name in names:
        touched = np.array([name in row for row in rules], dtype=bool)
        dropped = int(sum(d == name for d in drop_names))
        rows.append([name, "table", int(touched.sum()), dropped, int((touched & relabelled).sum())])
    return pd.DataFrame(rows, columns=["rule", "source", "changed", "dropped", "relabelled"])


# ---------------------------------------------------------------------------
# Flips


def flip_tables(
    table: pd.DataFrame, previous: pd.Series | None, names: tuple[str, ...], source: str = "none"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """How predictions moved since the previous round: totals, top pairs, full matrix.

    Only items present in both rounds are compared. Returns empty tables (with
    their columns) when there is no previous round to compare with.
    """
    totals_columns = ["compared_with", "compared", "flipped", "flip_share"]
    pairs_columns = ["from", "to", "count"]
    matrix_columns = ["previous", *names]
    if previous is None:
        return (
            pd.DataFrame(columns=totals_columns),
            pd.DataFrame(columns=pairs_columns),
            pd.DataFrame(columns=matrix_columns),
        )
    current = table.drop_duplicates("item_id").set_index("item_id")["pred"]
    joined = pd.concat({"before": previous, "after": current}, axis=1, join="inner").dropna()
    before = joined["before"].to_numpy(dtype=np.int64)
    after = joined["after"].to_numpy(dtype=np.int64)
    matrix = flip_matrix(before, after, len(names))
    flipped = int(matrix.sum() - np.trace(matrix))
    share = _ratio(flipped, len(joined))
    totals = pd.DataFrame([[source, len(joined), flipped, share]], columns=totals_columns)
    pairs = [
        (names[i], names[j], int(matrix[i, j]))
        for i, j in zip(*np.nonzero(matrix))
        if i != j
    ]
    pairs.sort(key=lambda p: -p[2])  # stable: ties keep class order
    top = pd.DataFrame(pairs[:FLIP_PAIRS_SHOWN], columns=pairs_columns)
    full = pd.DataFrame(matrix, columns=list(names))
    full.insert(0, "previous", list(names))
    return totals, top, full


def flip_matrix(before: np.ndarray, after: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts of items predicted `before[i]` then `after[i]`; out-of-range indices ignored."""
    inside = (before >= 0) & (before < num_classes) & (after >= 0) & (after < num_classes)
    flat = before[inside] * num_classes + after[inside]
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


# ---------------------------------------------------------------------------
# Canary audit (ground truth, where the benchmark has it)


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
    truth_counts = _class_counts(truth[known], n)
    teacher = _class_counts(pred[known], n)
    teacher_right = _class_counts(pred[known & (pred == truth).fillna(False).to_numpy(bool)], n)
    frame = pd.DataFrame({"class": list(names), "truth": truth_counts, "teacher": teacher})
    frame["teacher_precision"] = [_ratio(r, t) for r, t in zip(teacher_right, teacher)]
    frame["teacher_recall"] = [_ratio(r, t) for r, t in zip(teacher_right, truth_counts)]
    kept = kept_mask(table)
    if kept is None:
        for column in ("kept", "kept_correct", "precision", "recall"):
            frame[column] = np.nan
        return frame
    labels = pseudo_labels_of(table)
    judged = kept & known
    right = judged & (labels == truth).fillna(False).to_numpy(bool)
    kept_counts = _class_counts(labels[judged], n)
    kept_right = _class_counts(labels[right], n)
    frame["kept"] = kept_counts
    frame["kept_correct"] = kept_right
    frame["precision"] = [_ratio(r, k) for r, k in zip(kept_right, kept_counts)]
    frame["recall"] = [_ratio(r, t) for r, t in zip(kept_right, truth_counts)]
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
        accuracy = _ratio(correct, judged.sum())
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
        rows.append([rule, int(mask.sum()), int(judged.sum()), wrong, _ratio(wrong, judged.sum())])
    return pd.DataFrame(rows, columns=list(CANARY_DROP_COLUMNS))


def _accuracy(labels: pd.Series, truth: pd.Series) -> float:
    judged = truth.notna().to_numpy(dtype=bool)
    return _ratio(int((labels[judged] == truth[judged]).sum()), judged.sum())


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


# ---------------------------------------------------------------------------
# One item across rounds; two rounds side by side


def item_history(paths: ProjectPaths, item_id: str) -> pd.DataFrame:
    """One row per round in which `item_id` appears: what the teacher said and what refinement did.

    Columns: HISTORY_COLUMNS (null where a round's table lacks one) plus
    ``true_label`` when it is known.

    Raises:
        ItemNotFoundError: the item appears in no round's table.
    """
    rows = []
    for k in available_rounds(paths):
        path = paths.refined(k) if paths.refined(k).exists() else paths.pseudo_labels(k)
        found = _read_table(path, filters=[("item_id", "==", item_id)])
        if found.empty:
            continue
        rows.append(_history_row(k, found.iloc[0]))
    if not rows:
        rounds = ", ".join(str(r) for r in available_rounds(paths)) or "none"
        raise ItemNotFoundError(f"item {item_id!r} is in no round's table; rounds on disk: {rounds}")
    frame = pd.DataFrame(rows)
    for column in ("teacher_gen", "pred", "label", TRUTH_COLUMN):
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    frame["kept"] = pd.array(frame["kept"].tolist(), dtype="boolean")
    if not frame[TRUTH_COLUMN].notna().any():
        frame = frame.drop(columns=[TRUTH_COLUMN])
    return frame


def _history_row(k: int, row: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {"round": k}
    for column in HISTORY_COLUMNS[1:]:
        value = row.get(column, None)
        out[column] = _as_list(value) if column == "rules" and value is not None else _scalar(value)
    out[TRUTH_COLUMN] = _scalar(row.get(TRUTH_COLUMN, None))
    return out


def _scalar(value: Any) -> Any:
    """A plain Python value, None for any flavour of null."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def compare_rounds(paths: ProjectPaths, j: int, k: int) -> dict[str, pd.DataFrame]:
    """The summary tables of rounds j and k side by side.

    Each table is joined on its key columns (`SUMMARY_TABLES`); every other column
    ``c`` appears as ``c@j`` next to ``c@k``. Keys present in only one round give
    nulls on the other side.
    """
    left, right = round_summary(paths, j), round_summary(paths, k)
    return {
        name: _side_by_side(left[name], right[name], keys, j, k)
        for name, (_, keys) in SUMMARY_TABLES.items()
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


# ---------------------------------------------------------------------------
# Terminal rendering


def render_summary(summary: Mapping[str, pd.DataFrame], console: Any = None) -> None:
    """Print each table of a summary (or of `compare_rounds`) as a rich table.

    Args:
        summary: table name -> frame; names in `SUMMARY_TABLES` get their titles.
        console: a ``rich.console.Console``; a new one on stdout when None.
    """
    from rich.console import Console

    console = console or Console()
    for name, frame in summary.items():
        title = SUMMARY_TABLES.get(name, (name, ()))[0]
        render_table(frame, title, console)


def render_table(frame: pd.DataFrame, title: str, console: Any) -> None:
    """Print one frame as a rich table; an empty frame prints as one 'not available' line."""
    from rich.table import Table

    if frame.empty:
        console.print(f"[dim]{title}: not available[/dim]")
        return
    table = Table(title=title, title_justify="left")
    for column in frame.columns:
        values = frame[column]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        table.add_column(str(column), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(format_cell(v) for v in row))
    console.print(table)


def format_cell(value: Any) -> str:
    """Text of one cell: floats to 4 places, lists joined, nulls as '-'."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value) or "-"
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}"
    return str(value)


__all__ = [
    "ItemNotFoundError",
    "RoundData",
    "RoundNotFoundError",
    "SUMMARY_TABLES",
    "available_rounds",
    "canary_tables",
    "check_round",
    "compare_rounds",
    "confusion_table",
    "flip_matrix",
    "flip_tables",
    "format_cell",
    "item_history",
    "kept_mask",
    "load_round",
    "previous_predictions",
    "pseudo_labels_of",
    "render_summary",
    "render_table",
    "round_summary",
    "rules_lists",
    "summarize_round",
    "truth_of",
]
