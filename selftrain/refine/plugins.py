"""Plug-in rules: run the user's function on a copy of the table and enforce its contract.

A plug-in (`module:function`, ``(frame, context) -> frame``) returns the same rows in
the same order and may change only `PLUGIN_WRITABLE`; a drop stays final, labels are
class indices and weights finite and >= 0. What it changed is accounted like a rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from selftrain.errors import DataError, SelftrainError
from selftrain.refine.config import Rule
from selftrain.refine.inputs import RefineContext, row_name
from selftrain.refine.report import RuleStats
from selftrain.refine.state import RowState

# What a plug-in may change in the frame it returns; everything else is read-only.
PLUGIN_WRITABLE = ("label", "weight", "kept")


def apply_plugin(
    rule: Rule, base: pd.DataFrame, state: RowState, context: RefineContext, num_classes: int
) -> RuleStats:
    """Run a plug-in on a copy of the table; account for what it changed in label/weight/kept."""
    stats = RuleStats(rule.name, "plugin", description=rule.description)
    view = base.copy(deep=True)
    view["label"] = pd.array(state.labels, dtype="Int64")
    view["weight"] = state.weight.copy()
    view["kept"] = state.kept.copy()
    try:
        result = rule.plugin_fn(view, context)
    except SelftrainError:
        raise
    except Exception as exc:
        exc.add_note(f"raised by the plug-in of {rule.where}: {rule.plugin}")
        raise
    where = f"{rule.where}: plug-in {rule.plugin!r}"
    if not isinstance(result, pd.DataFrame):
        raise DataError(f"{where} returned {type(result).__name__}, expected a DataFrame")
    if len(result) != len(base) or not result.index.equals(base.index) or not _same(result, base, "item_id"):
        raise DataError(f"{where} added, removed or reordered rows; plug-ins return the same rows in order")
    for name in (*PLUGIN_WRITABLE, *base.columns):
        if name not in result.columns:
            raise DataError(f"{where} returned no column {name!r}")
    for name in base.columns:
        if not _same(result, base, name):
            raise DataError(
                f"{where} changed column {name!r}; plug-ins may change only {list(PLUGIN_WRITABLE)}"
            )
    kept = result["kept"]
    if not pd.api.types.is_bool_dtype(kept) or kept.isna().any():
        raise DataError(f"{where}: column 'kept' must be booleans without nulls, got dtype {kept.dtype}")
    new_kept = kept.to_numpy(dtype=bool)
    revived = new_kept & ~state.kept
    if revived.any():
        raise DataError(f"{where} set kept=True on dropped {row_name(base, int(np.flatnonzero(revived)[0]))}; a drop is final")
    survives = new_kept | state.exempt
    try:
        labels = pd.array(result["label"], dtype="Int64")
    except (TypeError, ValueError):
        raise DataError(f"{where}: column 'label' must hold class indices, got dtype {result['label'].dtype}") from None
    live = state.kept & survives
    bad_label = live & (pd.isna(labels) | ~np.isin(labels.to_numpy(dtype=np.float64, na_value=-1), np.arange(num_classes)))
    if bad_label.any():
        i = int(np.flatnonzero(bad_label)[0])
        raise DataError(f"{where}: label {labels[i]!r} at kept {row_name(base, i)} is not a class index in [0, {num_classes - 1}]")
    try:
        weight = result["weight"].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: column 'weight' must hold numbers, got dtype {result['weight'].dtype}") from None
    bad_weight = live & ~(np.isfinite(weight) & (weight >= 0))
    if bad_weight.any():
        raise DataError(f"{where}: weight at {row_name(base, int(np.flatnonzero(bad_weight)[0]))} must be finite and >= 0")

    changed = state.drop(state.kept & ~new_kept, stats)
    new_labels = labels.to_numpy(dtype=np.int64, na_value=-1)
    changed |= state.relabel(live, new_labels, stats)
    reweighted = live & (weight != state.weight)
    state.weight[reweighted] = weight[reweighted]
    stats.weighted = int(reweighted.sum())
    changed |= reweighted
    stats.matched = int(changed.sum())
    state.note(changed, stats)
    return stats


def _same(a: pd.DataFrame, b: pd.DataFrame, column: str) -> bool:
    try:
        return bool(a[column].reset_index(drop=True).equals(b[column].reset_index(drop=True)))
    except (TypeError, ValueError):
        return False

