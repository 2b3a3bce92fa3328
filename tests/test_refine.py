"""refine(): condition rules and their actions, rule order, groups, the firewall, properties."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refine_fixtures import (
    BED,
    DRESSER,
    EXTRA,
    ISLAND,
    ISLAND_TO_DRESSER,
    LAMP,
    NAMES,
    RESULT_COLUMNS,
    drop_when,
    dropped,
    full_run,
    make_table,
    rich_table,
    run,
)
from selftrain.errors import ConfigError
from selftrain.refine import RefineContext, parse_refine_config, refine


# --- operators -----------------------------------------------------------------

CONF = [0.5, 0.7, 0.9]


@pytest.mark.parametrize(
    "condition, expected",
    [
        ({"column": "confidence", "op": "==", "value": 0.7}, [1]),
        ({"column": "confidence", "op": "!=", "value": 0.7}, [0, 2]),
        ({"column": "confidence", "op": "<", "value": 0.7}, [0]),
        ({"column": "confidence", "op": "<=", "value": 0.7}, [0, 1]),
        ({"column": "confidence", "op": ">", "value": 0.7}, [2]),
        ({"column": "confidence", "op": ">=", "value": 0.7}, [1, 2]),
        ({"column": "pred", "op": "==", "value": "island"}, [1]),
        ({"column": "pred", "op": "!=", "value": 1}, [0, 2]),
        ({"column": "pred", "op": "in", "value": ["bed", "3"]}, [0, 2]),
        ({"column": "pred", "op": "not_in", "value": ["bed", "lamp"]}, [1]),
        ({"column": "source", "op": "==", "value": "web"}, [0]),
        ({"column": "source", "op": "in", "value": ["web", "scan"]}, [0, 1]),
        ({"column": "source", "op": "not_in", "value": ["web"]}, [1]),  # null matches neither
        ({"column": "source", "op": "!=", "value": "web"}, [1]),  # null matches only is_null
        ({"column": "source", "op": "is_null"}, [2]),
        ({"column": "source", "op": "not_null"}, [0, 1]),
        ({"column": "width", "op": ">", "value": 100}, [1, 2]),
        ({"column": "item_id", "op": "==", "value": "item002"}, [2]),
        ({"column": "second_pred", "op": "==", "value": "bed"}, [1, 2]),
        ({"column": "second_confidence", "op": "<", "value": 0.1}, [2]),
        ({"column": "label", "op": "==", "value": "lamp"}, [2]),
        ({"column": "weight", "op": "==", "value": 1.0}, [0, 1, 2]),
    ],
)
def test_each_op_selects_the_expected_rows(condition, expected):
    table = make_table([BED, ISLAND, LAMP], CONF, source=["web", "scan", None], width=[50, 150, 200])
    result = run(table, [drop_when(condition)])
    assert dropped(result) == expected
    assert result.table["dropped_by"].tolist() == ["r" if i in expected else None for i in range(3)]


def test_all_any_not_nest_like_boolean_algebra():
    rng = np.random.default_rng(0)
    n = 40
    preds = rng.integers(0, 4, n).tolist()
    confs = rng.uniform(0.3, 1.0, n).round(3).tolist()
    widths = rng.integers(0, 300, n).tolist()
    table = make_table(preds, confs, width=widths)
    condition = {
        "any": [
            {"all": [{"column": "pred", "op": "==", "value": "bed"}, {"column": "confidence", "op": "<", "value": 0.6}]},
            {"not": {"any": [{"column": "width", "op": "<", "value": 250}, {"column": "pred", "op": "==", "value": "lamp"}]}},
        ]
    }
    p, c, w = np.array(preds), np.array(confs), np.array(widths)
    expected = ((p == BED) & (c < 0.6)) | ~((w < 250) | (p == LAMP))
    assert 0 < expected.sum() < n
    assert dropped(run(table, [drop_when(condition)])) == np.flatnonzero(expected).tolist()


# --- actions -------------------------------------------------------------------


def test_drop_records_dropped_by_and_clears_training_columns():
    table = make_table([BED, ISLAND], [0.9, 0.9])
    out = run(table, [drop_when({"column": "pred", "op": "==", "value": "island"}, name="no-islands")]).table
    assert out["kept"].tolist() == [True, False]
    assert out["dropped_by"].tolist() == [None, "no-islands"]
    assert out["rules"].tolist() == [[], ["no-islands"]]
    assert out["label"].tolist() == [BED, pd.NA]
    assert str(out["label"].dtype) == "Int64"
    assert out["copies"].tolist() == [1, 0]
    assert out["weight"].tolist() == [1.0, 0.0]
    assert out["target"][1] is None


def test_relabel_sets_label_and_one_hot_target_even_when_soft():
    table = make_table([BED, ISLAND], [0.8, 0.8])
    rules = [{"name": "to-dresser", "when": {"column": "pred", "op": "==", "value": "island"}, "relabel": "dresser"}]
    out = run(table, rules, soft=True).table
    assert out["label"].tolist() == [BED, DRESSER]
    assert out["pred"].tolist() == [BED, ISLAND]  # the teacher's prediction is never rewritten
    assert out["target"][1] == [0.0, 0.0, 1.0, 0.0]
    assert out["target"][0] == pytest.approx(table["probs"][0])
    assert out["rules"].tolist() == [[], ["to-dresser"]]


def test_relabel_to_the_same_class_changes_nothing():
    table = make_table([DRESSER])
    out = run(table, [{"name": "noop", "when": {"column": "pred", "op": "==", "value": "dresser"}, "relabel": "dresser"}])
    assert out.table["rules"][0] == []
    assert out.report["rules"][0]["matched"] == 1 and out.report["rules"][0]["changed"] == 0


def test_weight_scales_and_composes():
    table = make_table([BED, ISLAND], width=[10, 500])
    rules = [
        {"name": "all-half", "when": {"column": "confidence", "op": ">", "value": 0}, "weight": 0.5},
        {"name": "wide-half", "when": {"column": "width", "op": ">", "value": 100}, "weight": 0.5},
    ]
    out = run(table, rules).table
    assert out["weight"].tolist() == [0.5, 0.25]
    assert out["rules"].tolist() == [["all-half"], ["all-half", "wide-half"]]


def test_keep_exempts_rows_from_later_drops_but_not_earlier_ones():
    table = make_table([BED, BED, ISLAND], [0.3, 0.3, 0.3], source=["trusted", "web", "trusted"])
    rules = [
        drop_when({"column": "pred", "op": "==", "value": "island"}, name="no-islands"),
        {"name": "trust", "when": {"column": "source", "op": "==", "value": "trusted"}, "keep": True},
        drop_when({"column": "confidence", "op": "<", "value": 0.5}, name="low-conf"),
    ]
    result = run(table, rules, threshold=0.7)
    out = result.table
    assert out["kept"].tolist() == [True, False, False]
    assert out["dropped_by"].tolist() == [None, "low-conf", "no-islands"]
    assert out["rules"][0] == ["trust"]  # neither low-conf nor threshold touched it
    by_name = {r["name"]: r for r in result.report["rules"]}
    assert by_name["low-conf"]["exempted"] == 1 and by_name["low-conf"]["dropped"] == 1
    assert by_name["threshold"]["exempted"] == 1 and by_name["threshold"]["dropped"] == 0


def test_threshold_action_overrides_the_row_threshold():
    table = make_table([BED, BED, LAMP, LAMP], [0.6, 0.6, 0.6, 0.95], source=["scan", "web", "scan", "scan"])
    rules = [
        {"name": "scans-easier", "when": {"column": "source", "op": "==", "value": "scan"}, "threshold": 0.5},
        {"name": "lamps-harder", "when": {"column": "pred", "op": "==", "value": "lamp"}, "threshold": {"lamp": 0.9}},
    ]
    out = run(table, rules, threshold=0.7).table
    # row 0: scan -> 0.5 passes; row 1: global 0.7 fails; row 2: lamp override 0.9 fails; row 3 passes
    assert out["kept"].tolist() == [True, False, False, True]
    assert out["rules"][2] == ["scans-easier", "lamps-harder", "threshold"]


def test_rule_order_matters_and_is_the_params_order():
    table = make_table([ISLAND, DRESSER, BED])
    relabel = {"name": "to-dresser", "when": {"column": "pred", "op": "==", "value": "island"}, "relabel": "dresser"}
    drop = drop_when({"column": "label", "op": "==", "value": "dresser"}, name="no-dressers")
    assert dropped(run(table, [relabel, drop])) == [0, 1]
    assert dropped(run(table, [drop, relabel])) == [1]
    assert run(table, [relabel, drop]).report["order"][:2] == ["to-dresser", "no-dressers"]


def test_first_drop_wins_and_dropped_rows_are_final():
    table = make_table([BED])
    rules = [
        drop_when({"column": "pred", "op": "==", "value": "bed"}, name="first"),
        drop_when({"column": "pred", "op": "==", "value": "bed"}, name="second"),
        {"name": "relabel-late", "when": {"column": "pred", "op": "==", "value": "bed"}, "relabel": "lamp"},
    ]
    result = run(table, rules)
    assert result.table["dropped_by"][0] == "first"
    assert result.table["rules"][0] == ["first"]
    assert [r["matched"] for r in result.report["rules"][:3]] == [1, 0, 0]


# --- group rules -----------------------------------------------------------------


def kitchen():
    # room1: bed + island (a dresser, really); room2: island + lamp (a kitchen); room3: lone island
    return make_table(
        [BED, ISLAND, ISLAND, LAMP, ISLAND, ISLAND],
        [0.9, 0.9, 0.9, 0.9, 0.9, 0.9],
        group_id=["room1", "room1", "room2", "room2", "room3", None],
    )


def test_kitchen_island_seen_with_a_bed_becomes_a_dresser():
    result = run(kitchen(), [ISLAND_TO_DRESSER], group_by="group_id")
    assert result.table["label"].tolist() == [BED, DRESSER, ISLAND, LAMP, ISLAND, ISLAND]
    assert result.report["rules"][0]["relabelled"] == {"island->dresser": 1}


def test_group_has_ignores_the_row_itself_and_needs_every_class():
    table = kitchen()
    self_only = drop_when({"all": [{"column": "pred", "op": "==", "value": "bed"}, {"group_has": ["bed"]}]})
    assert dropped(run(table, [self_only], group_by="group_id")) == []
    # group_has lists classes that must *all* appear on other rows: in room1 the bed sees an
    # island but no other bed, and the island sees a bed but no other island.
    both = drop_when({"group_has": ["bed", "island"]})
    assert dropped(run(table, [both], group_by="group_id")) == []
    either = drop_when({"any": [{"group_has": ["bed"]}, {"group_has": ["lamp"]}]})
    assert dropped(run(table, [either], group_by="group_id")) == [1, 2]


def test_group_count_counts_other_live_rows():
    table = make_table([BED, BED, BED, LAMP], group_id=["a", "a", "a", "b"])
    two_other_beds = drop_when({"group_count": {"class": "bed", "op": ">=", "value": 2}})
    assert dropped(run(table, [two_other_beds], group_by="group_id")) == [0, 1, 2]
    alone = drop_when({"group_count": {"op": "==", "value": 0}})
    assert dropped(run(table, [alone], group_by="group_id")) == [3]


def test_group_evidence_comes_from_current_labels_of_live_rows():
    rules = [drop_when({"column": "pred", "op": "==", "value": "bed"}, name="no-beds"), ISLAND_TO_DRESSER]
    out = run(kitchen(), rules, group_by="group_id").table
    assert out["label"][1] == ISLAND  # the bed that would have been evidence was dropped first
    relabel_bed = {"name": "lamp-to-bed", "when": {"column": "pred", "op": "==", "value": "lamp"}, "relabel": "bed"}
    out = run(kitchen(), [relabel_bed, ISLAND_TO_DRESSER], group_by="group_id").table
    assert out["label"].tolist() == [BED, DRESSER, DRESSER, BED, ISLAND, ISLAND]


# --- determinism, idempotence, the firewall ------------------------------------------------


def test_refine_is_idempotent_and_does_not_mutate_its_input():
    table = rich_table()
    snapshot = table.copy(deep=True)
    first, second = full_run(table), full_run(table)
    pd.testing.assert_frame_equal(first.table, second.table)
    assert first.report == second.report
    pd.testing.assert_frame_equal(table, snapshot)


@pytest.mark.parametrize("variant", ["shuffled", "constant", "null"])
def test_true_label_never_changes_refinement(variant):
    table = rich_table()
    previous = rich_table(seed=2)
    rng = np.random.default_rng(5)
    truth = {
        "shuffled": rng.permutation(np.arange(len(table)) % 4),
        "constant": np.zeros(len(table), dtype=int),
        "null": pd.array([pd.NA] * len(table), dtype="Int64"),
    }[variant]
    blind = full_run(table, previous)
    informed = full_run(table.assign(true_label=truth), previous.assign(true_label=rng.integers(0, 4, len(previous))))
    pd.testing.assert_frame_equal(informed.table.drop(columns=["true_label"]), blind.table)
    stripped = {k: v for k, v in informed.report.items() if k != "accuracy"}
    stripped["rules"] = [{k: v for k, v in r.items() if k != "precision"} for r in informed.report["rules"]]
    assert stripped == blind.report


def test_true_label_column_is_unreadable_even_if_declared_as_metadata():
    with pytest.raises(ConfigError, match="ground truth"):
        parse_refine_config(
            {"rules": [drop_when({"column": "true_label", "op": "==", "value": 0})]}, NAMES, ("true_label",)
        )


def test_empty_table_refines_to_an_empty_table():
    result = full_run(rich_table(n=0))
    assert len(result.table) == 0 and set(RESULT_COLUMNS) <= set(result.table.columns)
    assert result.report["rows"] == 0
    json.dumps(result.report, allow_nan=False)


# --- properties --------------------------------------------------------------------------


@st.composite
def tables_and_sections(draw):
    n = draw(st.integers(0, 25))
    preds = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    confs = draw(st.lists(st.floats(0.26, 1.0), min_size=n, max_size=n))
    groups = draw(st.lists(st.sampled_from(["a", "b", "c", None]), min_size=n, max_size=n))
    truth = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    table = make_table(preds, confs, group_id=groups, width=list(range(n)))
    cls = st.sampled_from(list(NAMES))
    condition = st.one_of(
        st.builds(lambda c, v: {"column": "confidence", "op": c, "value": v}, st.sampled_from(["<", ">=", "=="]), st.floats(0, 1)),
        st.builds(lambda c: {"column": "pred", "op": "==", "value": c}, cls),
        st.builds(lambda c: {"group_has": [c]}, cls),
        st.builds(lambda v: {"column": "width", "op": "<", "value": v}, st.integers(0, 25)),
    )
    action = st.one_of(
        st.just({"drop": True}),
        st.builds(lambda c: {"relabel": c}, cls),
        st.builds(lambda w: {"weight": w}, st.floats(0, 3)),
        st.just({"keep": True}),
        st.builds(lambda t: {"threshold": t}, st.floats(0, 1)),
    )
    rules = draw(st.lists(st.tuples(condition, action), max_size=4))
    section = {
        "soft": draw(st.booleans()),
        "temperature": draw(st.floats(0.1, 3)),
        "threshold": draw(st.one_of(st.none(), st.floats(0, 1))),
        "agreement": draw(st.booleans()),
        "balance": {"enabled": draw(st.booleans()), "per_class": draw(st.one_of(st.none(), st.integers(1, 8)))},
        "group_by": "group_id",
        "rules": [{"name": f"rule{i}", "when": c, **a} for i, (c, a) in enumerate(rules)],
    }
    previous = make_table(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))) if draw(st.booleans()) else None
    return table, section, truth, previous


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=tables_and_sections())
def test_property_rows_are_never_invented_or_silently_lost(case):
    table, section, truth, previous = case
    cfg = parse_refine_config(section, NAMES, EXTRA)
    result = refine(table, cfg, RefineContext(NAMES, 2, previous))
    out = result.table
    assert len(out) == len(table) and out["item_id"].tolist() == table["item_id"].tolist()
    kept = out["kept"].to_numpy(dtype=bool)
    has_reason = out["dropped_by"].map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    assert (kept ^ has_reason).all()  # every row is kept or says who dropped it
    assert (out["label"].isna().to_numpy() == ~kept).all()
    copies = out["copies"].to_numpy()
    assert ((copies >= 1) == kept).all() and (copies[~kept] == 0).all()
    for target, keep in zip(out["target"], kept):
        if keep:
            assert len(target) == len(NAMES) and sum(target) == pytest.approx(1.0)
        else:
            assert target is None
    for rules, reason in zip(out["rules"], out["dropped_by"]):
        if reason is not None:
            assert rules[-1] == reason  # the drop is the last thing that happened to the row
    report = result.report
    assert report["kept"] == kept.sum() and report["training_rows"] == copies.sum()
    assert sum(r["dropped"] for r in report["rules"]) == (~kept).sum()
    json.dumps(report, allow_nan=False)
    # The firewall, as a property: ground truth changes nothing but the report's scores.
    informed = refine(table.assign(true_label=truth), cfg, RefineContext(NAMES, 2, previous))
    pd.testing.assert_frame_equal(informed.table.drop(columns=["true_label"]), out)
