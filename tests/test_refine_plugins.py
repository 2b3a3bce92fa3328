"""Plug-in rules: what they may change, how it is accounted, and their contract."""

from __future__ import annotations

import pytest

from refine_fixtures import BED, ISLAND, LAMP, drop_when, make_table, plug, plugin_wide_to_lamp, run
from selftrain.errors import DataError


# Plug-ins are found by dotted path: this module's own name (see refine_fixtures.plug).


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
