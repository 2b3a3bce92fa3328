"""refine(): conditions, actions, rule order, groups, plug-ins, built-ins, targets, firewall."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selftrain.errors import ConfigError, DataError
from selftrain.refine import RefineContext, format_report, parse_refine_config, refine, sharpen

NAMES = ("bed", "island", "dresser", "lamp")
BED, ISLAND, DRESSER, LAMP = range(4)
EXTRA = ("group_id", "source", "width")
RESULT_COLUMNS = ["label", "target", "weight", "kept", "copies", "rules", "dropped_by"]
# No built-in filtering unless a test asks for it, so each test sees only its rule.
QUIET = {"threshold": None, "balance": {"enabled": False}}


def make_table(preds, confidences=None, **columns) -> pd.DataFrame:
    """Pseudo-labels with probs that put `confidence` on `pred` and share the rest evenly."""
    n = len(preds)
    confidences = [0.9] * n if confidences is None else confidences
    probs = []
    for pred, conf in zip(preds, confidences):
        row = np.full(len(NAMES), (1.0 - conf) / (len(NAMES) - 1))
        row[pred] = conf
        probs.append(row.tolist())
    p = np.array(probs).reshape(n, len(NAMES))
    top2 = np.sort(p, axis=1)[:, -2:]
    frame = pd.DataFrame(
        {
            "item_id": [f"item{i:03d}" for i in range(n)],
            "path": [f"img/{i}.png" for i in range(n)],
            "teacher_gen": [0] * n,
            "pred": preds,
            "confidence": confidences,
            "margin": (top2[:, 1] - top2[:, 0]).tolist(),
            "entropy": (-(p * np.log(p, where=p > 0, out=np.zeros_like(p))).sum(axis=1)).tolist(),
            "probs": probs,
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def config(rules=(), **section):
    raw = {**QUIET, **section, "rules": list(rules)}
    return parse_refine_config(raw, NAMES, EXTRA)


def run(table, rules=(), previous=None, **section):
    return refine(table, config(rules, **section), RefineContext(NAMES, 1, previous))


def drop_when(condition, name="r"):
    return {"name": name, "when": condition, "drop": True}


def dropped(result) -> list[int]:
    return np.flatnonzero(~result.table["kept"].to_numpy()).tolist()


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


ISLAND_TO_DRESSER = {
    "name": "island-to-dresser",
    "when": {"all": [{"column": "pred", "op": "==", "value": "island"}, {"group_has": ["bed"]}]},
    "relabel": "dresser",
}


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


# --- plug-ins (found by dotted path: this module's own name) ---------------------------


def plugin_wide_to_lamp(frame: pd.DataFrame, context: RefineContext) -> pd.DataFrame:
    assert "true_label" not in frame.columns
    assert context.previous is None or "true_label" not in context.previous.columns
    wide = frame["width"] > 100
    frame.loc[wide, "label"] = context.class_names.index("lamp")
    frame.loc[frame["width"] < 10, "kept"] = False
    frame.loc[frame["width"] == 50, "weight"] = 3.0
    return frame


def plugin_drop_everything(frame, context):
    return frame.assign(kept=False)


def plugin_drops_a_row(frame, context):
    return frame.iloc[1:]


def plugin_edits_pred(frame, context):
    return frame.assign(pred=0)


def plugin_revives(frame, context):
    return frame.assign(kept=True)


def plugin_bad_label(frame, context):
    return frame.assign(label=99)


def plugin_returns_none(frame, context):
    return None


def plugin_raises(frame, context):
    raise RuntimeError("plug-in bug")


def plug(name, function):
    return {"name": name, "plugin": f"{__name__}:{function.__name__}"}


def test_plugin_changes_are_accounted_like_a_rule():
    table = make_table([BED, BED, ISLAND, ISLAND], width=[5, 50, 150, 80], true_label=[0, 0, 3, 1])
    result = run(table, [plug("wide-lamps", plugin_wide_to_lamp)], previous=table)
    out = result.table
    assert out["kept"].tolist() == [False, True, True, True]
    assert out["dropped_by"][0] == "wide-lamps"
    assert out["label"].tolist()[1:] == [BED, LAMP, ISLAND]
    assert out["weight"].tolist() == [0.0, 3.0, 1.0, 1.0]
    assert out["rules"].tolist() == [["wide-lamps"], ["wide-lamps"], ["wide-lamps"], []]
    entry = result.report["rules"][0]
    assert entry["kind"] == "plugin"
    assert (entry["changed"], entry["dropped"], entry["weighted"]) == (3, 1, 1)
    assert entry["relabelled"] == {"island->lamp": 1}


def test_plugin_drops_respect_keep():
    table = make_table([BED, ISLAND])
    rules = [{"name": "trust-beds", "when": {"column": "pred", "op": "==", "value": "bed"}, "keep": True}, plug("nuke", plugin_drop_everything)]
    result = run(table, rules)
    assert result.table["kept"].tolist() == [True, False]
    assert result.report["rules"][1]["exempted"] == 1


@pytest.mark.parametrize(
    "function, message",
    [
        (plugin_drops_a_row, "added, removed or reordered rows"),
        (plugin_edits_pred, "changed column 'pred'"),
        (plugin_revives, "a drop is final"),
        (plugin_bad_label, "is not a class index"),
        (plugin_returns_none, "returned NoneType, expected a DataFrame"),
    ],
)
def test_plugin_contract_violations_raise_data_error_naming_the_rule(function, message):
    table = make_table([BED, ISLAND], width=[1, 2])
    rules = [drop_when({"column": "pred", "op": "==", "value": "bed"}, name="first"), plug("bad", function)]
    with pytest.raises(DataError, match=r"refine\.rules\[1\] \(name 'bad'\).*" + message):
        run(table, rules)


def test_plugin_exceptions_propagate_with_a_note_naming_the_rule():
    with pytest.raises(RuntimeError, match="plug-in bug") as info:
        run(make_table([BED]), [plug("boom", plugin_raises)])
    assert any("refine.rules[0] (name 'boom')" in note for note in info.value.__notes__)


# --- built-ins -----------------------------------------------------------------------


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


# --- targets ---------------------------------------------------------------------------


def test_soft_targets_are_sharpened_with_temperature():
    table = make_table([BED, LAMP], [0.6, 0.7])
    probs = np.array(table["probs"].tolist())
    plain = np.array(run(table, soft=True, temperature=1.0).table["target"].tolist())
    np.testing.assert_allclose(plain, probs / probs.sum(axis=1, keepdims=True))
    sharp = np.array(run(table, soft=True, temperature=0.5).table["target"].tolist())
    squared = probs**2
    np.testing.assert_allclose(sharp, squared / squared.sum(axis=1, keepdims=True))
    assert (sharp.max(axis=1) > plain.max(axis=1)).all()
    flat = np.array(run(table, soft=True, temperature=4.0).table["target"].tolist())
    assert (flat.max(axis=1) < plain.max(axis=1)).all()


def test_hard_targets_are_one_hot_of_the_label():
    table = make_table([BED, LAMP], [0.6, 0.7])
    targets = run(table, soft=False).table["target"].tolist()
    assert targets == [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]


def test_sharpen_survives_zero_probabilities_and_tiny_temperatures():
    out = sharpen(np.array([[0.0, 0.3, 0.7], [0.5, 0.5, 0.0]]), 0.01)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, [[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]], atol=1e-12)


# --- determinism, idempotence, the firewall ------------------------------------------------

FULL_RULES = [
    ISLAND_TO_DRESSER,
    {"name": "trust", "when": {"column": "source", "op": "==", "value": "gold"}, "keep": True, "weight": 2},
    drop_when({"column": "confidence", "op": "<", "value": 0.4}, name="very-low"),
    plug("wide-lamps", plugin_wide_to_lamp),
]


def rich_table(n=30, seed=1):
    rng = np.random.default_rng(seed)
    return make_table(
        rng.integers(0, 4, n).tolist(),
        rng.uniform(0.3, 1.0, n).round(3).tolist(),
        group_id=rng.choice(["r1", "r2", "r3", "r4"], n).tolist(),
        source=rng.choice(["gold", "web"], n).tolist(),
        width=rng.integers(8, 200, n).tolist(),
    )


def full_run(table, previous=None):
    section = {"threshold": 0.6, "agreement": True, "balance": {"enabled": True}, "group_by": "group_id"}
    return run(table, FULL_RULES, previous=previous, **section)


def test_refine_is_idempotent_and_does_not_mutate_its_input():
    table = rich_table()
    snapshot = table.copy(deep=True)
    first, second = full_run(table), full_run(table)
    pd.testing.assert_frame_equal(first.table, second.table)
    assert first.report == second.report
    pd.testing.assert_frame_equal(table, snapshot)


def test_output_keeps_rows_order_index_and_input_columns():
    table = rich_table().set_index(pd.Index(range(100, 130)))
    out = full_run(table).table
    assert out.index.equals(table.index)
    assert list(out.columns[: len(table.columns)]) == list(table.columns)
    assert out["item_id"].tolist() == table["item_id"].tolist()
    assert set(RESULT_COLUMNS + ["second_pred", "second_confidence"]) <= set(out.columns)


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


# --- input errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t.drop(columns=["probs"]), r"missing columns \['probs'\]"),
        (lambda t: t.assign(label=1), "already has refinement columns"),
        (lambda t: t.assign(item_id="same"), "duplicate 'same'"),
        (lambda t: t.assign(pred=[0, 7]), r"pseudo_labels.pred: 7 at row 1 \(item_id 'item001'\)"),
        (lambda t: t.assign(pred=[0.5, 1.0]), "pseudo_labels.pred"),
        (lambda t: t.assign(confidence=[np.nan, 0.5]), "pseudo_labels.confidence: null at row 0"),
        (lambda t: t.assign(probs=[[0.5, 0.5], [0.25] * 4]), r"row 0 .* has shape \(2,\), expected \(4,\)"),
        (lambda t: t.assign(probs=[[-1.0, 1, 0.5, 0.5], [0.25] * 4]), "not a probability vector"),
        (lambda t: t.assign(probs=[None, [0.25] * 4]), "pseudo_labels.probs"),
    ],
)
def test_bad_tables_raise_data_error_naming_the_column(mutate, message):
    with pytest.raises(DataError, match=message):
        run(mutate(make_table([BED, ISLAND])))


def test_missing_or_mistyped_rule_columns_raise_data_error_before_any_work():
    table = make_table([BED, ISLAND], source=["a", "b"])
    with pytest.raises(DataError, match=r"refine\.rules\[0\] \(name 'r'\): column 'width' is not in"):
        run(table, [drop_when({"column": "width", "op": ">", "value": 3})])
    with pytest.raises(DataError, match=r"refine\.rules\[0\] \(name 'r'\)\.when: column 'source' has dtype .* cannot be compared with 3"):
        run(table, [drop_when({"column": "source", "op": "==", "value": 3})])
    with pytest.raises(DataError, match="refine.group_by: column 'group_id' is not in"):
        run(table, group_by="group_id")


def test_context_must_match_the_config():
    with pytest.raises(ConfigError, match="class_names"):
        refine(make_table([BED]), config(), RefineContext(("a", "b"), 1, None))
    with pytest.raises(DataError, match=r"context.previous: missing columns \['pred'\]"):
        run(make_table([BED]), previous=pd.DataFrame({"item_id": ["item000"], "confidence": [0.5]}))


def test_refined_table_round_trips_through_parquet(tmp_path):
    table = rich_table()
    out = full_run(table, previous=rich_table(seed=3)).table
    path = tmp_path / "refined.parquet"
    out.to_parquet(path)
    back = pd.read_parquet(path)
    assert back["label"].tolist() == out["label"].tolist()
    assert back["kept"].tolist() == out["kept"].tolist()
    assert back["copies"].tolist() == out["copies"].tolist()
    assert [list(r) for r in back["rules"]] == out["rules"].tolist()
    assert [None if t is None else list(t) for t in back["target"]] == out["target"].tolist()
    assert back["dropped_by"].fillna("").tolist() == out["dropped_by"].fillna("").tolist()


def test_empty_table_refines_to_an_empty_table():
    result = full_run(rich_table(n=0))
    assert len(result.table) == 0 and set(RESULT_COLUMNS) <= set(result.table.columns)
    assert result.report["rows"] == 0
    json.dumps(result.report, allow_nan=False)


# --- the report ------------------------------------------------------------------------


def test_report_counts_and_precision():
    # rows: 0 island@bed-room (truth dresser), 1 bed (truth bed), 2 island alone (truth lamp),
    #       3 lamp conf .5 (truth lamp), 4 lamp conf .95 (truth bed)
    table = make_table(
        [ISLAND, BED, ISLAND, LAMP, LAMP],
        [0.9, 0.9, 0.9, 0.5, 0.95],
        group_id=["g1", "g1", "g2", "g3", "g3"],
        true_label=[DRESSER, BED, LAMP, LAMP, BED],
    )
    rules = [
        ISLAND_TO_DRESSER,
        {"name": "lone-island", "when": {"all": [{"column": "pred", "op": "==", "value": "island"}, {"column": "label", "op": "==", "value": "island"}]}, "relabel": "bed"},
    ]
    report = run(table, rules, threshold=0.7, group_by="group_id").report
    json.dumps(report, allow_nan=False)
    by_name = {r["name"]: r for r in report["rules"]}
    assert by_name["island-to-dresser"]["relabelled"] == {"island->dresser": 1}
    assert by_name["island-to-dresser"]["precision"]["relabel"] == {"right": 1, "judged": 1, "precision": 1.0}
    assert by_name["lone-island"]["precision"]["relabel"] == {"right": 0, "judged": 1, "precision": 0.0}
    assert by_name["threshold"]["dropped"] == 1
    # the threshold dropped row 3, a correct lamp: a wrong drop
    assert by_name["threshold"]["precision"]["drop"] == {"right": 0, "judged": 1, "precision": 0.0}
    assert by_name["margin"]["precision"]["overall"]["precision"] is None
    assert report["classes"]["before"] == {"bed": 1, "island": 2, "dresser": 0, "lamp": 2}
    assert report["classes"]["after"] == {"bed": 2, "island": 0, "dresser": 1, "lamp": 1}
    assert report["accuracy"]["before"] == pytest.approx(2 / 5)
    assert report["accuracy"]["after"] == pytest.approx(2 / 4)
    assert (report["rows"], report["kept"], report["dropped"]) == (5, 4, 1)


def test_report_has_no_truth_sections_without_truth():
    report = full_run(rich_table()).report
    assert "accuracy" not in report
    assert all("precision" not in r for r in report["rules"])
    assert report["order"] == ["island-to-dresser", "trust", "very-low", "wide-lamps", "threshold", "margin", "entropy", "agreement", "balance"]
    json.dumps(report, allow_nan=False)


def test_format_report_renders_rules_and_classes():
    table = make_table([ISLAND, BED, LAMP], [0.9, 0.9, 0.5], group_id=["g", "g", "h"], true_label=[DRESSER, BED, LAMP])
    text = format_report(run(table, [ISLAND_TO_DRESSER], threshold=0.7, group_by="group_id").report)
    lines = text.splitlines()
    assert lines[0].startswith("refine, generation 1: 3 rows, 2 kept, 1 dropped")
    rule_line = next(line for line in lines if line.startswith("island-to-dresser"))
    assert "island->dresser: 1" in rule_line and "1.00 (1/1)" in rule_line
    assert any(line.startswith("threshold") and "0.00 (0/1)" in line for line in lines)
    assert any(line.startswith("margin (off)") for line in lines)
    assert any(line.split() == ["dresser", "0", "1", "1"] for line in lines)
    assert "66.7% before -> 100.0% after" in text


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
