"""A round's review queue: which pool items a person should look at first, and why.

Strategies (``--by``), each a ranking of the round's rows:

- ``uncertainty``: lowest calibrated confidence first (ties: smaller margin);
- ``flips``: items whose prediction changed since the round before, least confident first;
- ``rule_disagreement``: rows a rule relabelled away from the teacher's pick, or dropped for
  a reason other than a confidence or count filter, most confident teacher first (the
  teacher was sure, a rule said otherwise); needs the refined table;
- ``ood``: highest ``ood_score`` first (the round's out-of-distribution score, where infer
  wrote one).

A multilabel round's table (label sets) is ranked by `selftrain.review.label_queue`, into
its own columns. Items already in the corrections file are left out: a person has settled them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from selftrain.errors import DataError
from selftrain.inspection.label_set_tables import is_multilabel_table
from selftrain.inspection.rounds import RoundData, load_round, previous_predictions
from selftrain.paths import ProjectPaths
from selftrain.refine.corrections import read_csv_text
from selftrain.review.label_queue import LABEL_SET_RANKERS, label_set_queue
from selftrain.review.names import DEFAULT_TOP, QUEUE_COLUMNS
from selftrain.review.ranking import Ranking, check_request, rank_by_ood, rank_rule_disagreements, rows_to_rank


def rank_queue(
    table: pd.DataFrame,
    class_names: tuple[str, ...],
    by: str,
    top: int,
    previous: pd.Series | None = None,
    previous_source: str = "the previous round",
    exclude: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """The `top` rows of `table` to review by strategy `by`, as the queue's columns
    (`QUEUE_COLUMNS`; `LABEL_SET_QUEUE_COLUMNS` for a multilabel round's table).

    Args:
        table: a round's table (pseudo-labels, or refined with kept/label/rules/dropped_by).
        previous: the round before's predictions by item_id (flips only): class indices,
            or label sets in a multilabel round.
        exclude: item ids a person already corrected.

    Raises:
        ConfigError: unknown strategy or top < 1.
        DataError: the round lacks what the strategy ranks by (no previous round, not
            refined, no ood_score column).
    """
    check_request(by, top)
    rows = rows_to_rank(table, exclude)
    if is_multilabel_table(rows):
        chosen, why = LABEL_SET_RANKERS[by](rows, class_names, previous, previous_source)
        return label_set_queue(rows, chosen[:top], why, class_names)
    chosen, why = _RANKERS[by](rows, class_names, previous, previous_source)
    picked = rows.loc[chosen[:top]]
    queue = pd.DataFrame(
        {
            "item_id": picked["item_id"].astype(str).to_numpy(),
            "path": picked["path"].astype(str).to_numpy() if "path" in picked.columns else "",
            "predicted_label": [_name(p, class_names) for p in picked["pred"].tolist()],
            "confidence": picked["confidence"].to_numpy(dtype=np.float64).round(4),
            "why": [why[i] for i in chosen[:top]],
            "correct_label": "",
            "note": "",
        }
    )
    return queue[list(QUEUE_COLUMNS)]


def _uncertainty(rows: pd.DataFrame, names, previous, source) -> Ranking:
    confidence = rows["confidence"].to_numpy(dtype=np.float64)
    margin = rows["margin"].to_numpy(dtype=np.float64) if "margin" in rows.columns else np.zeros(len(rows))
    order = np.lexsort((np.arange(len(rows)), margin, confidence)).tolist()
    why = {i: f"low confidence {confidence[i]:.2f} (margin {margin[i]:.2f})" for i in order}
    return order, why


def _flips(rows: pd.DataFrame, names, previous, source) -> Ranking:
    if previous is None:
        raise DataError("--by flips: this round has no previous round's predictions to compare with")
    before = rows["item_id"].map(previous)
    pred = rows["pred"].to_numpy(dtype=np.int64)
    known = before.notna().to_numpy(bool)
    flipped = known & (before.to_numpy(dtype=np.float64, na_value=np.nan) != pred)
    candidates = np.flatnonzero(flipped)
    confidence = rows["confidence"].to_numpy(dtype=np.float64)
    order = candidates[np.lexsort((candidates, confidence[candidates]))].tolist()
    why = {i: f"flipped {_name(before.iloc[i], names)} -> {_name(pred[i], names)} since {source}" for i in order}
    return order, why


def _rule_disagreement(rows: pd.DataFrame, names, previous, source) -> Ranking:
    pred = rows["pred"].to_numpy(dtype=np.int64)
    label = rows["label"].to_numpy(dtype=np.float64, na_value=np.nan) if "label" in rows.columns else None

    def relabelled(i: int) -> str | None:
        if label[i] == pred[i]:
            return None
        return f"relabelled {_name(pred[i], names)} -> {_name(label[i], names)}"

    return rank_rule_disagreements(rows, "label", relabelled, lambda i: _name(pred[i], names), "confidence")


_RANKERS = {
    "uncertainty": _uncertainty,
    "flips": _flips,
    "rule_disagreement": _rule_disagreement,
    "ood": rank_by_ood,
}


def _name(index: object, names: tuple[str, ...]) -> str:
    if index is None or pd.isna(index):
        return "-"
    i = int(index)
    return names[i] if 0 <= i < len(names) else str(i)


def round_queue(paths: ProjectPaths, gen: int, by: str, top: int = DEFAULT_TOP) -> tuple[pd.DataFrame, RoundData]:
    """Round `gen`'s queue, read through the inspection loaders; corrected items left out."""
    data = load_round(paths, gen)
    previous, source = previous_predictions(paths, data) if by == "flips" else (None, "none")
    queue = rank_queue(
        data.table, data.class_names, by, top, previous, source, exclude=corrected_ids(paths.corrections)
    )
    return queue, data


def corrected_ids(path: Path) -> frozenset[str]:
    """Item ids the corrections file already names (none if it is absent)."""
    if not path.exists():
        return frozenset()
    table = read_csv_text(path)
    if "item_id" not in table.columns:
        raise DataError(f"{path}: missing column 'item_id'")
    return frozenset(i.strip() for i in table["item_id"])
