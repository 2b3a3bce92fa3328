"""The built-in rules: thresholds, margin and entropy limits, agreement, balance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from refine_fixtures import BED, DRESSER, ISLAND, LAMP, NAMES, drop_when, dropped, make_table, run
from selftrain.refine import RefineContext, parse_refine_config, refine


def test_global_and_per_class_thresholds():
    table = make_table([BED, BED, LAMP, LAMP, ISLAND], [0.69, 0.7, 0.85, 0.95, 0.6])
    out = run(table, threshold=0.7, class_thresholds={"lamp": 0.9, "1": 0.5}).table
    assert out["kept"].tolist() == [False, True, False, True, True]
    assert out["dropped_by"].tolist() == ["threshold", None, "threshold", None, None]


def test_threshold_uses_the_class_of_the_relabelled_row():
    table = make_table([ISLAND], [0.8])
    rules = [{"name": "to-lamp", "when": {"column": "pred", "op": "==", "value": "island"}, "relabel": "lamp"}]
    assert run(table, rules, threshold=0.5, class_thresholds={"lamp": 0.9}).table["kept"].tolist() == [False]
    assert run(table, threshold=0.5, class_thresholds={"lamp": 0.9}).table["kept"].tolist() == [True]


def test_default_threshold_is_on():
    table = make_table([BED, BED], [0.5, 0.9])
    cfg = parse_refine_config({"balance": {"enabled": False}}, NAMES)
    assert refine(table, cfg, RefineContext(NAMES, 1, None)).table["kept"].tolist() == [False, True]


def test_margin_and_entropy_limits():
    table = make_table([BED, BED, BED], [0.4, 0.7, 0.97])
    margins, entropies = table["margin"].tolist(), table["entropy"].tolist()
    out = run(table, min_margin=(margins[0] + margins[1]) / 2).table
    assert out["dropped_by"].tolist() == ["margin", None, None]
    out = run(table, max_entropy=(entropies[1] + entropies[2]) / 2).table
    assert out["dropped_by"].tolist() == ["entropy", "entropy", None]


def test_agreement_drops_rows_that_changed_their_mind():
    table = make_table([BED, ISLAND, LAMP])
    previous = make_table([BED, LAMP], [0.6, 0.8]).assign(item_id=["item000", "item001"])
    result = run(table, previous=previous, agreement=True)
    out = result.table
    assert out["dropped_by"].tolist() == [None, "agreement", None]  # item002 is new: not judged
    assert out["prev_pred"].tolist() == [BED, LAMP, pd.NA]
    assert out["prev_confidence"].tolist()[:2] == [0.6, 0.8]
    assert np.isnan(out["prev_confidence"][2])


def test_agreement_without_previous_round_is_a_noted_no_op():
    result = run(make_table([BED, ISLAND]), agreement=True)
    assert result.table["kept"].all()
    assert "prev_pred" not in result.table.columns
    entry = next(r for r in result.report["rules"] if r["name"] == "agreement")
    assert entry["enabled"] and "no previous round" in entry["note"]


def test_prev_columns_are_readable_by_rules():
    table = make_table([BED, ISLAND])
    previous = make_table([BED, BED])
    rule = drop_when({"column": "prev_pred", "op": "!=", "value": "island"})
    assert dropped(run(table, [rule], previous=previous)) == [0, 1]
    rule = drop_when({"column": "prev_pred", "op": "is_null"})
    assert dropped(run(table, [rule])) == [0, 1]


def test_balance_caps_by_confidence_and_duplicates_by_copies():
    preds = [BED] * 5 + [LAMP] * 2 + [ISLAND] * 3
    confs = [0.91, 0.99, 0.95, 0.92, 0.93, 0.8, 0.9, 0.9, 0.9, 0.9]
    result = run(make_table(preds, confs), balance={"per_class": 3})
    out = result.table
    assert out["dropped_by"].tolist()[:5] == ["balance", None, None, "balance", None]
    assert out["copies"].tolist() == [0, 1, 1, 0, 1, 1, 2, 1, 1, 1]
    assert out.groupby("label")["copies"].sum().to_dict() == {BED: 3, ISLAND: 3, LAMP: 3}
    assert out["rules"][6] == ["balance"] and out["rules"][5] == []
    entry = result.report["rules"][-1]
    assert (entry["name"], entry["dropped"], entry["duplicated"], entry["copies_added"]) == ("balance", 2, 1, 1)
    assert result.report["training_rows"] == 9


def test_balance_default_is_the_median_kept_count_rounded_up():
    preds = [BED] * 6 + [LAMP] * 1 + [ISLAND] * 2 + [DRESSER] * 3
    out = run(make_table(preds), balance={"enabled": True}).table
    # counts 6, 1, 2, 3 -> median 2.5 -> 3 per class
    assert out.groupby("label")["copies"].sum().to_dict() == {BED: 3, ISLAND: 3, DRESSER: 3, LAMP: 3}
    assert (out["copies"] >= 1).sum() == 3 + 1 + 2 + 3


def test_balance_cap_keeps_exempt_rows_first():
    table = make_table([BED] * 3, [0.7, 0.8, 0.99], source=["gold", "x", "x"])
    rules = [{"name": "gold", "when": {"column": "source", "op": "==", "value": "gold"}, "keep": True}]
    out = run(table, rules, balance={"per_class": 1}).table
    assert out["kept"].tolist() == [True, False, False]
