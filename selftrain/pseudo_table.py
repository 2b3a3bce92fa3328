"""The round's pseudo-label table: its columns, their Arrow types, and its rows from a
teacher's probabilities (`selftrain.infer` streams them into the round's parts).

Multi-class rows summarise a softmax (pred, confidence, margin, entropy). Multi-label
rows (params `task: multilabel`) hold per-class sigmoid `probs` and the label set they
predict at `multilabel.threshold` / `multilabel.class_thresholds` (`LabelSets`,
`selftrain.multilabel_predictions`): pred_labels, their scores, min_margin and
mean_binary_entropy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from selftrain.config import Params
from selftrain.label_columns import LABELS_COLUMN
from selftrain.multilabel_predictions import decision_thresholds, label_set_columns
from selftrain.prediction import summarize_probs

# Columns of the pseudo-label table, in order; later columns only ever get added.
PSEUDO_LABEL_COLUMNS = (
    "item_id",
    "path",
    "teacher_gen",
    "pred",
    "confidence",
    "margin",
    "entropy",
    "probs",
    "ood_score",
)
# The same for a multi-label round (params `task: multilabel`).
MULTILABEL_COLUMNS = (
    "item_id",
    "path",
    "teacher_gen",
    "probs",
    "pred_labels",
    "scores",
    "min_margin",
    "mean_binary_entropy",
    "ood_score",
)
# Arrow types of the columns infer computes (the others come from the pool).
_COMPUTED_TYPES = {
    "teacher_gen": pa.int64(),
    "pred": pa.int64(),
    "confidence": pa.float64(),
    "margin": pa.float64(),
    "entropy": pa.float64(),
    "probs": pa.list_(pa.float64()),
    "pred_labels": pa.list_(pa.string()),
    "scores": pa.list_(pa.float64()),
    "min_margin": pa.float64(),
    "mean_binary_entropy": pa.float64(),
    "ood_score": pa.float64(),
}


@dataclass(frozen=True)
class LabelSets:
    """How a multi-label round turns probabilities into label sets: the class names and
    each one's threshold, in class order."""

    class_names: tuple[str, ...]
    thresholds: tuple[float, ...]

    def columns(self, probs: np.ndarray) -> dict:
        """pred_labels, scores, min_margin, mean_binary_entropy of probs (N, C)."""
        return label_set_columns(probs, self.class_names, np.asarray(self.thresholds, dtype=np.float64))


def label_sets_for(params: Params, class_names: Sequence[str]) -> LabelSets | None:
    """The round's `LabelSets` in the multi-label task, None in the multi-class one.

    Thresholds are `multilabel.threshold`, overridden per class by
    `multilabel.class_thresholds`: the sets refine starts from.
    """
    if params.task != "multilabel":
        return None
    thresholds = decision_thresholds(params, class_names)
    return LabelSets(tuple(class_names), tuple(float(t) for t in thresholds))


def pseudo_label_table(
    pool: pd.DataFrame,
    probs: np.ndarray,
    teacher_gen: int,
    ood_score: np.ndarray | None = None,
    label_sets: LabelSets | None = None,
) -> pd.DataFrame:
    """The round's table: the contract columns first, then the pool's metadata columns.
    `ood_score` (N,) is null when not given (a table made from probabilities alone).
    With `label_sets` (multi-label task) the columns are `MULTILABEL_COLUMNS`."""
    summary = summarize_probs(probs) if label_sets is None else label_sets.columns(probs)
    if ood_score is None:
        ood_score = np.full(len(pool), np.nan)
    columns = {
        "item_id": pool["item_id"].to_numpy(),
        "path": pool["path"].to_numpy(),
        "teacher_gen": np.full(len(pool), teacher_gen, dtype=np.int64),
        # object dtype even for zero rows: Arrow then types it as list<double>.
        "probs": pd.Series(list(probs.astype(np.float64)), dtype=object),
        "ood_score": np.asarray(ood_score, dtype=np.float64),
    }
    for name, values in summary.items():
        # Lists (pred_labels, scores) as object columns, for zero rows too.
        columns[name] = pd.Series(values, dtype=object) if isinstance(values, list) else values
    table = pd.DataFrame({name: columns[name] for name in _column_names(label_sets is not None)})
    extra = [c for c in pool.columns if c not in table.columns and c != "split"]
    return pd.concat([table, pool[extra].reset_index(drop=True)], axis=1)


def pseudo_label_schema(pool: pd.DataFrame, multilabel: bool = False) -> pa.Schema:
    """The Arrow schema of every part of a round's table (`MULTILABEL_COLUMNS` first when
    `multilabel`).

    Taken from the whole pool, not from one shard, so that every part has the same
    types (a metadata column that is all null in one shard is not typed `null` there).
    """
    pool_types = pa.Schema.from_pandas(pool.drop(columns=["split"], errors="ignore"), preserve_index=False)
    names = _column_names(multilabel)
    fields = [
        pa.field(name, _COMPUTED_TYPES[name]) if name in _COMPUTED_TYPES else pool_types.field(name)
        for name in names
    ]
    fields += [pool_types.field(name) for name in pool_types.names if name not in names]
    return pa.schema(fields)


def _column_names(multilabel: bool) -> tuple[str, ...]:
    return MULTILABEL_COLUMNS if multilabel else PSEUDO_LABEL_COLUMNS


def without_label_columns(rows: pd.DataFrame, label_sets: LabelSets | None) -> pd.DataFrame:
    """Multi-label rows without the manifest's `labels` column: null on the pool, and the
    truth on val; refine's `labels` column is its own. Multi-class rows as they are."""
    if label_sets is None:
        return rows
    return rows.drop(columns=[LABELS_COLUMN], errors="ignore")


__all__ = [
    "MULTILABEL_COLUMNS",
    "PSEUDO_LABEL_COLUMNS",
    "LabelSets",
    "label_sets_for",
    "pseudo_label_schema",
    "pseudo_label_table",
    "without_label_columns",
]
