"""Each rule's precision on the val split, where the truth is known, and which rules it skips.

The teacher's calibrated predictions on val have the columns of a pseudo-label table
plus the val truth (``true_label``), so the round's rules run on them as on the pool
and the report's accounting judges them: a relabel is right when the new label is the
truth, a drop is right when the dropped row's label was wrong (the same definitions as
the canary precision on the pool). A rule's val precision is its `overall` figure:
right relabels and drops over the relabels and drops judged.

In a multi-label round the val table carries the true label sets (``true_labels``)
and the rules run as `refine_multilabel` runs them on the pool; `overall` pools the
label moves (an added label right when it is in the true set, a removed one when it
is not) and the drops (right when the image's set was not its true set).

With ``refine.min_rule_precision`` set, the user's rules are measured in params order,
each after the rules kept before it (the state it would really run in); one below the
bound is skipped, on val and then on the pool. A rule that relabels or drops no val
row has no precision and is applied: val gives no evidence against it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from selftrain.refine.config import RefineConfig, Rule
from selftrain.refine.engine import refine
from selftrain.refine.inputs import RefineContext
from selftrain.refine.label_round import refine_multilabel


@dataclass(frozen=True)
class ValCheck:
    """What val said about the round's rules."""

    rows: int  # val rows the rules ran on
    # Rule or built-in name -> its precision entry on val ({relabel, drop, overall}, or the
    # multi-label report's {added, removed, labels, drop, overall}).
    precision: dict[str, dict[str, Any]]
    applied: tuple[Rule, ...]  # the user's rules that run on the pool, in params order
    skipped: tuple[Rule, ...]  # those below `min_rule_precision`


def check_rules_on_val(val: pd.DataFrame, config: RefineConfig, generation: int) -> ValCheck:
    """Run `config`'s rules on `val` (a pseudo-label table with ``true_label``, or
    ``true_labels`` in a multi-label round) and judge them."""
    context = RefineContext(class_names=config.class_names, generation=generation)
    refine_table = refine_multilabel if config.multilabel else refine
    precision: dict[str, dict[str, Any]] = {}
    applied: list[Rule] = []
    skipped: list[Rule] = []
    if config.min_rule_precision is None:
        applied = list(config.rules)
    else:
        for rule in config.rules:
            trial = refine_table(val, dataclasses.replace(config, rules=(*applied, rule)), context)
            entry = trial.report["rules"][len(applied)]["precision"]
            value = entry["overall"]["precision"]
            if value is not None and value < config.min_rule_precision:
                skipped.append(rule)
                precision[rule.name] = entry
            else:
                applied.append(rule)
    final = refine_table(val, dataclasses.replace(config, rules=tuple(applied)), context)
    for entry in final.report["rules"]:
        precision[entry["name"]] = entry["precision"]
    return ValCheck(rows=len(val), precision=precision, applied=tuple(applied), skipped=tuple(skipped))
