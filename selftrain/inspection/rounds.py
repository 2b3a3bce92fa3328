"""Reading a round's artifacts from disk: which rounds exist, their tables, rules report and class names.

The artifact columns only grow, so readers check for a column before using it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from selftrain.data import CLASSES_FILE
from selftrain.errors import DataError, SelftrainError
from selftrain.paths import ProjectPaths
from selftrain.truth import TRUTH_COLUMN, read_truth, with_truth


class RoundNotFoundError(SelftrainError):
    """A round was asked for that has no pseudo-label table on disk."""



@dataclass(frozen=True)
class RoundData:
    """One round's artifacts as read from disk.

    Attributes:
        round: the round k (1..N).
        table: ``refined.parquet`` when it exists (with any column it lacks taken
            from the ``pseudo_labels/`` table), else the ``pseudo_labels/`` table;
            with ``true_label`` joined from the truth file where there is one.
        refined: whether `table` went through refinement (has kept/label columns).
        rules_report: the parsed ``rules_report.json``, or None when absent.
        class_names: index -> name.
    """

    round: int
    table: pd.DataFrame
    refined: bool
    rules_report: dict | None
    class_names: tuple[str, ...]



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
    pseudo = read_table(paths.pseudo_labels(k)) if paths.pseudo_labels(k).exists() else None
    refined = read_table(paths.refined(k)) if paths.refined(k).exists() else None
    if refined is None:
        table = pseudo
    elif pseudo is None:
        table = refined
    else:
        table = _add_missing_columns(refined, pseudo)
    table = with_truth(table, read_truth(paths.truth))
    return RoundData(
        round=k,
        table=table,
        refined=refined is not None,
        rules_report=_read_rules_report(paths.rules_report(k)),
        class_names=_class_names(paths, table),
    )


def read_table(path: Path, **kwargs: Any) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read table: {exc}") from exc
    # A multiclass round predicts `pred`, a multilabel round `pred_labels` (a set per image).
    prediction = "pred_labels" if "pred_labels" in table.columns else "pred"
    columns = kwargs.get("columns")
    required = [c for c in ("item_id", prediction) if columns is None or c in columns]
    missing = [c for c in required if c not in table.columns]
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
    In a multilabel round the predictions are round k-1's predicted sets (``pred_labels``).
    """
    k = data.round - 1
    prediction = "pred_labels" if "pred_labels" in data.table.columns else "pred"
    for path in (paths.pseudo_labels(k), paths.refined(k)) if k >= 1 else ():
        if path.exists():
            previous = read_table(path, columns=["item_id", prediction]).drop_duplicates("item_id")
            return previous.set_index("item_id")[prediction], f"round {k}"
    if "prev_pred" in data.table.columns and data.table["prev_pred"].notna().any():
        known = data.table[data.table["prev_pred"].notna()].drop_duplicates("item_id")
        return known.set_index("item_id")["prev_pred"], "prev_pred column"
    return None, "none"
