"""What every review queue shares, whatever the task: the request checks, the rows it ranks, the ood ranking.

A ranker takes the rows to rank (one per item, corrected items left out), the class
names, the previous round's predictions by item_id and where they came from, and
returns the chosen row positions in review order with a why text for each.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from selftrain.errors import ConfigError, DataError
from selftrain.inspection.views import as_list
from selftrain.refine.corrections import RULE_NAME
from selftrain.refine.ood_config import SCORE_COLUMN
from selftrain.review.names import STRATEGIES

# Drops that say "not sure enough" or "too many of this class", not "this label is wrong".
FILTER_RULES = ("threshold", "margin", "entropy", "balance", "ood", RULE_NAME)

# (row positions in review order, row position -> why it was picked)
Ranking = tuple[list[int], dict[int, str]]


def check_request(by: str, top: int) -> None:
    """Raise ConfigError for an unknown strategy or top < 1."""
    if by not in STRATEGIES:
        raise ConfigError(f"--by: {by!r} is not a strategy; expected one of {list(STRATEGIES)}")
    if top < 1:
        raise ConfigError(f"--top: must be at least 1, got {top}")


def rows_to_rank(table: pd.DataFrame, exclude: frozenset[str]) -> pd.DataFrame:
    """One row per item, without the items in `exclude` (settled by a person), positions 0..n-1."""
    rows = table.drop_duplicates("item_id").reset_index(drop=True)
    return rows[~rows["item_id"].astype(str).isin(exclude)].reset_index(drop=True)


def rank_by_ood(rows: pd.DataFrame, names, previous, source) -> Ranking:
    """Highest ``ood_score`` first; rows without a score are left out."""
    if SCORE_COLUMN not in rows.columns:
        raise DataError(
            f"--by ood: this round has no OOD scores (no {SCORE_COLUMN!r} column in its pseudo-labels); "
            "infer writes them when refine.ood is configured"
        )
    score = rows[SCORE_COLUMN].to_numpy(dtype=np.float64)
    scored = np.flatnonzero(~np.isnan(score))
    order = scored[np.lexsort((scored, -score[scored]))].tolist()
    return order, {i: f"out-of-distribution score {score[i]:.3g}" for i in order}


def rank_rule_disagreements(
    rows: pd.DataFrame,
    label_column: str,
    changed: Callable[[int], str | None],
    teacher_said: Callable[[int], str],
    certainty_column: str,
) -> Ranking:
    """Rows a rule that is not a filter changed (`changed(i)`: what it did, None if the
    label stayed the teacher's) or dropped, the most certain teacher first (by
    `certainty_column`, higher is surer); rows a person corrected are left out.

    Raises:
        DataError: the round is not refined, or has no `certainty_column`.
    """
    missing = [c for c in ("kept", label_column, "rules", "dropped_by") if c not in rows.columns]
    if missing:
        raise DataError(f"--by rule_disagreement: the round is not refined (no column(s) {missing}); run refine first")
    if certainty_column not in rows.columns:
        raise DataError(f"--by rule_disagreement: the round's table has no {certainty_column!r} column")
    certainty = rows[certainty_column].to_numpy(dtype=np.float64)
    kept = rows["kept"].to_numpy(dtype=bool)
    rules = [as_list(r) for r in rows["rules"]]
    dropped_by = rows["dropped_by"].tolist()
    why: dict[int, str] = {}
    for i in range(len(rows)):
        if RULE_NAME in rules[i]:
            continue  # a person settled it
        by_rules = ", ".join(r for r in rules[i] if r not in FILTER_RULES) or "a rule"
        if kept[i]:
            change = changed(i)
            if change is not None:
                why[i] = f"{by_rules} {change}"
        elif isinstance(dropped_by[i], str) and dropped_by[i] not in FILTER_RULES:
            why[i] = f"dropped by {dropped_by[i]} (teacher said {teacher_said(i)})"
    candidates = np.array(sorted(why), dtype=np.int64)
    order = candidates[np.lexsort((candidates, -certainty[candidates]))].tolist() if len(candidates) else []
    return order, why
