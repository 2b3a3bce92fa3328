"""Label sets of a multilabel source's rows: name checks, split strata, the prepared columns.

The multilabel counterpart of the class index a multiclass row carries: each row has a
label set (a list of class names, possibly empty) or None (unlabeled). Val and test are
split off by `sources.splits.split_off`, which stratifies by one integer per row; a row's
stratum is the rarest class it carries (counted over the rows that have a set), so the
rare classes are spread over the splits first, and the empty set is a stratum of its own.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from selftrain.errors import DataError
from selftrain.label_columns import LABELS_COLUMN, TRUE_LABELS_COLUMN, join_labels
from selftrain.truth import TRUTH_COLUMN

LabelSet = Sequence[str] | None


def check_label_sets(label_sets: Sequence[LabelSet], where: Sequence[str], class_names: Sequence[str]) -> None:
    """Every name of every set is a class; the first that is not is named with its row."""
    known = set(class_names)
    for i, names in enumerate(label_sets):
        for name in names or ():
            if name not in known:
                raise DataError(f"{where[i]}: label {name!r} is not in the class list {list(class_names)}")


def label_set_strata(label_sets: Sequence[LabelSet], splits: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """(N,) int64 strata for `split_off`: the index of the rarest class a row carries (ties:
    the earlier class), len(class_names) for the empty set, -1 for unlabeled rows."""
    index = {name: c for c, name in enumerate(class_names)}
    has_set = [names is not None and split != "unlabeled" for names, split in zip(label_sets, splits)]
    counts = np.zeros(len(class_names), dtype=np.int64)
    for names, counted in zip(label_sets, has_set):
        for c in {index[name] for name in names or ()} if counted else ():
            counts[c] += 1
    strata = np.full(len(label_sets), -1, dtype=np.int64)
    for i, (names, counted) in enumerate(zip(label_sets, has_set)):
        if counted:
            classes = sorted({index[name] for name in names})
            strata[i] = min(classes, key=lambda c: (counts[c], c)) if classes else len(class_names)
    return strata


def classes_without_labeled_row(
    label_sets: Sequence[LabelSet], splits: np.ndarray, class_names: Sequence[str]
) -> list[str]:
    """Class names no labeled row's set holds (the teacher would have no positive of them)."""
    seen = {name for names, split in zip(label_sets, splits) if split == "labeled" for name in names or ()}
    return [name for name in class_names if name not in seen]


def label_set_columns(label_sets: Sequence[LabelSet], splits: np.ndarray, class_names: Sequence[str]) -> dict:
    """The prepared manifest's label columns for multilabel rows (before the truth is split off).

    `labels`: the set as text in class order ("" for the empty set) on labeled, val and
    test rows, null on unlabeled ones; `true_labels`: the same for unlabeled rows whose set
    is known; `label` and `true_label`: null on every row (Int64).
    """
    order = {name: c for c, name in enumerate(class_names)}

    def text(names: LabelSet) -> str | None:
        return None if names is None else join_labels(sorted(set(names), key=order.__getitem__))

    unlabeled = np.asarray(splits) == "unlabeled"
    empty = pd.array([pd.NA] * len(label_sets), dtype="Int64")
    return {
        "label": empty,
        TRUTH_COLUMN: empty.copy(),
        LABELS_COLUMN: pd.Series([None if u else text(s) for s, u in zip(label_sets, unlabeled)], dtype=object),
        TRUE_LABELS_COLUMN: pd.Series([text(s) if u else None for s, u in zip(label_sets, unlabeled)], dtype=object),
    }
