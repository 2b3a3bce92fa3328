"""Group rules end to end on real digits: a planted co-occurrence confusion, fixed by a rule.

The example: digits come in pages of eight crops (`group_id`). The teacher
systematically reads a 6 as a 5, with 6 as its runner-up, on pages that also show
a 0 (think of a scanner artefact on those pages). Confidence cannot tell those rows
apart; a co-occurrence rule can:
`pred == 5 and second_pred == 6 and group_has [0] -> relabel 6`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

from selftrain.infer import pseudo_label_table
from selftrain.refine import RefineContext, parse_refine_config, refine

CLASSES = tuple(str(d) for d in range(10))
GROUP_RULE = {
    "name": "six-read-as-five-beside-zero",
    "when": {
        "all": [
            {"column": "pred", "op": "==", "value": "5"},
            {"column": "second_pred", "op": "==", "value": "6"},
            {"group_has": ["0"]},
        ]
    },
    "relabel": "6",
}


def grouped_round(seed: int = 0) -> pd.DataFrame:
    """A round table over real digit labels with the planted confusion."""
    rng = np.random.default_rng(seed)
    truth = load_digits().target
    group_id = np.arange(len(truth)) // 8
    has_zero = pd.Series(truth == 0).groupby(group_id).transform("any").to_numpy()
    planted = (truth == 6) & has_zero
    pred = np.where(planted, 5, truth)  # the planted, systematic confusion
    # Runner-up: the truth on planted rows, a random other class elsewhere.
    runner_up = np.where(planted, 6, (truth + rng.integers(1, 10, len(truth))) % 10)
    # Confident predictions either way: a threshold cannot find the planted rows.
    probs = np.full((len(truth), 10), 0.01)
    probs[np.arange(len(truth)), runner_up] = 0.08
    probs[np.arange(len(truth)), pred] = 0.83
    probs += rng.uniform(0, 0.005, probs.shape)
    probs /= probs.sum(axis=1, keepdims=True)
    pool = pd.DataFrame(
        {
            "item_id": [f"d{i}" for i in range(len(truth))],
            "path": [f"images/d{i}.png" for i in range(len(truth))],
            "group_id": [f"page{g}" for g in group_id],
            "true_label": truth,
        }
    )
    return pseudo_label_table(pool, probs, teacher_gen=0)


def kept_accuracy(rules: list[dict]) -> tuple[float, dict]:
    table = grouped_round()
    config = parse_refine_config(
        {"threshold": 0.5, "balance": {"enabled": False}, "group_by": "group_id", "rules": rules},
        CLASSES,
        extra_columns=("group_id",),
    )
    result = refine(table, config, RefineContext(CLASSES, generation=1, previous=None))
    return result.report["accuracy"]["after"], result.report


def test_group_rule_raises_pseudo_label_accuracy():
    table = grouped_round()
    planted = int(((table["true_label"] == 6) & (table["pred"] == 5)).sum())
    assert planted >= 50
    without, _ = kept_accuracy([])
    with_rule, report = kept_accuracy([GROUP_RULE])
    entry = next(e for e in report["rules"] if e["name"] == GROUP_RULE["name"])
    # Every planted row is fixed; the few true 5s with a 6 runner-up on a page with
    # a 0 are relabelled wrongly, and the rule's precision counts them.
    assert entry["relabelled"] == {"5->6": entry["changed"]}
    assert entry["precision"]["overall"]["right"] == planted
    assert entry["precision"]["overall"]["precision"] > 0.9
    print(f"kept pseudo-label accuracy: {without:.4f} without the group rule, {with_rule:.4f} with it")
    assert with_rule - without > 0.03, (without, with_rule)
