"""Label sets as stored in manifests and tables of the multilabel task, and their target matrices.

A manifest's ``labels`` cell is the image's label set as class names joined by ``|``
(``"bed|dresser"``); the empty string is the empty set (an image that shows none of
the classes), and a null cell means unlabeled. The prepared manifest keeps this form
(one string per row hashes and diffs the same in every clone); tables written by later
stages (pseudo labels, refined) hold lists of class names instead.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from selftrain.errors import DataError

LABELS_COLUMN = "labels"
# The canary truth of unlabeled rows in the multilabel task (the truth file's column).
TRUE_LABELS_COLUMN = "true_labels"
SEPARATOR = "|"


def join_labels(names: Sequence[str]) -> str:
    """["bed", "dresser"] -> "bed|dresser"; [] -> ""."""
    return SEPARATOR.join(names)


def split_labels(cell: object) -> list[str] | None:
    """A ``labels`` cell as a list of class names: "" -> [], null -> None; a list passes through."""
    if cell is None or (isinstance(cell, float) and np.isnan(cell)) or cell is pd.NA:
        return None
    if isinstance(cell, str):
        return [name.strip() for name in cell.split(SEPARATOR) if name.strip()]
    return [str(name) for name in cell]


def target_matrix(cells: Sequence[object], class_names: Sequence[str], where: str) -> np.ndarray:
    """(N, C) float32 0/1 targets of label-set cells (strings or lists of class names).

    Raises:
        DataError: a null cell (no label set) or a name that is not a class; `where` names
            the file or table, and the message the row and the name.
    """
    index = {name: i for i, name in enumerate(class_names)}
    targets = np.zeros((len(cells), len(class_names)), dtype=np.float32)
    for row, cell in enumerate(cells):
        names = split_labels(cell)
        if names is None:
            raise DataError(f"{where}: row {row} has no `labels` value (null); a labeled row needs a label set")
        for name in names:
            if name not in index:
                raise DataError(
                    f"{where}: row {row} has label {name!r}, which is not a class; classes are {list(class_names)}"
                )
            targets[row, index[name]] = 1.0
    return targets


def label_lists(targets: np.ndarray, class_names: Sequence[str]) -> list[list[str]]:
    """Class names of each row's 1s in a 0/1 (N, C) matrix, in class order."""
    names = np.asarray(class_names, dtype=object)
    return [list(names[row > 0.5]) for row in np.asarray(targets)]
