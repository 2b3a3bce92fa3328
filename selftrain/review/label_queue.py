"""A multilabel round's review queue: the strategies ranked on label sets, and the queue's columns.

A row is an image: the teacher's set ``pred_labels``, ``min_margin`` (the distance of
its least certain class's probability to that class's threshold: small means unsure)
and ``mean_binary_entropy``; a refined round adds the set after the rules ``labels``
(null when dropped), ``kept``, ``rules`` and ``dropped_by``. Strategies:

- ``uncertainty``: smallest ``min_margin`` first (ties: higher ``mean_binary_entropy``,
  then table order);
- ``flips``: images whose predicted set differs from the previous round's, smallest
  ``min_margin`` first;
- ``rule_disagreement``: images whose set a rule other than a filter changed, or that
  such a rule dropped, largest ``min_margin`` first (the teacher was sure, a rule said
  otherwise); needs the refined table;
- ``ood``: as in multiclass (`selftrain.review.ranking.rank_by_ood`).

Sets are shown as class names joined by ``|`` in class order, the empty set as
``(none)``: the forms a person writes back in ``correct_labels``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from selftrain.errors import DataError
from selftrain.label_columns import LABELS_COLUMN, SEPARATOR, split_labels
from selftrain.review.names import LABEL_SET_QUEUE_COLUMNS, NO_LABELS
from selftrain.review.ranking import Ranking, rank_by_ood, rank_rule_disagreements

PREDICTED_COLUMN = "pred_labels"
MARGIN_COLUMN = "min_margin"
ENTROPY_COLUMN = "mean_binary_entropy"


def label_set_queue(
    rows: pd.DataFrame, chosen: list[int], why: dict[int, str], class_names: tuple[str, ...]
) -> pd.DataFrame:
    """The queue's rows for the `chosen` positions of `rows`, as `LABEL_SET_QUEUE_COLUMNS`."""
    picked = rows.loc[chosen]
    queue = pd.DataFrame(
        {
            "item_id": picked["item_id"].astype(str).to_numpy(),
            "path": picked["path"].astype(str).to_numpy() if "path" in picked.columns else "",
            "predicted_labels": [set_text(cell, class_names) for cell in picked[PREDICTED_COLUMN].tolist()],
            MARGIN_COLUMN: _numbers(picked, MARGIN_COLUMN, "the queue").round(4),
            "why": [why[i] for i in chosen],
            "correct_labels": "",
            "note": "",
        }
    )
    return queue[list(LABEL_SET_QUEUE_COLUMNS)]


def set_text(cell: object, class_names: Sequence[str]) -> str:
    """A label-set cell as a person reads and writes it: "bed|dresser" in class order,
    "(none)" for the empty set, "-" for no set (a dropped image's ``labels``)."""
    names = split_labels(cell)
    if names is None:
        return "-"
    if not names:
        return NO_LABELS
    order = {name: i for i, name in enumerate(class_names)}
    # A name outside the class list (a table from another run) still shows, after the classes.
    return SEPARATOR.join(sorted(set(names), key=lambda name: (order.get(name, len(order)), name)))


def _uncertainty(rows: pd.DataFrame, names, previous, source) -> Ranking:
    margin = _numbers(rows, MARGIN_COLUMN, "--by uncertainty")
    entropy = _numbers(rows, ENTROPY_COLUMN, "--by uncertainty")
    order = np.lexsort((np.arange(len(rows)), -entropy, margin)).tolist()
    # Two significant digits: the margins worth a look are near 0, where two decimals all read 0.00.
    why = {
        i: f"least certain class {margin[i]:.2g} from its threshold (mean binary entropy {entropy[i]:.2f})"
        for i in order
    }
    return order, why


def _flips(rows: pd.DataFrame, names, previous, source) -> Ranking:
    if previous is None:
        raise DataError("--by flips: this round has no previous round's predictions to compare with")
    before_by_id = {item_id: _as_set(cell) for item_id, cell in previous.items()}
    now = [_as_set(cell) for cell in rows[PREDICTED_COLUMN].tolist()]
    before = [before_by_id.get(item_id) for item_id in rows["item_id"].tolist()]
    # An image the previous round did not see (or saw without a set) cannot have flipped.
    flipped = [i for i in range(len(rows)) if before[i] is not None and before[i] != now[i]]
    candidates = np.array(flipped, dtype=np.int64)
    margin = _numbers(rows, MARGIN_COLUMN, "--by flips")
    order = candidates[np.lexsort((candidates, margin[candidates]))].tolist() if len(candidates) else []
    why = {
        i: f"set changed {set_text(list(before[i]), names)} -> {set_text(list(now[i]), names)} since {source}"
        for i in order
    }
    return order, why


def _rule_disagreement(rows: pd.DataFrame, names, previous, source) -> Ranking:
    predicted = rows[PREDICTED_COLUMN].tolist()
    after = rows[LABELS_COLUMN].tolist() if LABELS_COLUMN in rows.columns else None

    def changed(i: int) -> str | None:
        if _as_set(after[i]) == _as_set(predicted[i]):
            return None
        return f"changed {set_text(predicted[i], names)} -> {set_text(after[i], names)}"

    return rank_rule_disagreements(rows, LABELS_COLUMN, changed, lambda i: set_text(predicted[i], names), MARGIN_COLUMN)


LABEL_SET_RANKERS = {
    "uncertainty": _uncertainty,
    "flips": _flips,
    "rule_disagreement": _rule_disagreement,
    "ood": rank_by_ood,
}


def _as_set(cell: object) -> frozenset[str] | None:
    names = split_labels(cell)
    return None if names is None else frozenset(names)


def _numbers(rows: pd.DataFrame, column: str, what: str) -> np.ndarray:
    if column not in rows.columns:
        raise DataError(f"{what}: the round's table has no {column!r} column; a multilabel round's infer writes it")
    return rows[column].to_numpy(dtype=np.float64)
