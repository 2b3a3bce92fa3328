"""parse_rules and load_plugin: one entry of refine.rules, and the plug-in found by its path."""

from __future__ import annotations

import pytest

from selftrain.errors import ConfigError
from selftrain.refine.conditions import ColumnCondition, Schema
from selftrain.refine.rule_config import Rule, load_plugin, parse_rules

NAMES = ("bed", "island", "dresser", "lamp")
SCHEMA = Schema(class_names=NAMES)
RULE = "refine.rules[0] (name 'r')"
WHEN = {"column": "confidence", "op": "<", "value": 0.5}


def not_callable_plugin_target():  # referenced by path in a test below
    return None


NOT_CALLABLE = 42


def test_rules_keep_their_order_index_and_actions():
    rules = parse_rules(
        [{"name": "a", "when": WHEN, "drop": True}, {"name": "b", "when": WHEN, "relabel": "lamp", "weight": 2}],
        SCHEMA,
    )
    condition = ColumnCondition("confidence", "<", 0.5)
    assert rules == (
        Rule(name="a", index=0, when=condition, drop=True),
        Rule(name="b", index=1, when=condition, relabel=3, weight=2.0),
    )
    assert rules[1].where == "refine.rules[1] (name 'b')"


def test_plugin_is_imported_at_parse_time():
    (rule,) = parse_rules([{"name": "r", "plugin": f"{__name__}:not_callable_plugin_target"}], SCHEMA)
    assert rule.plugin_fn is not_callable_plugin_target
    assert rule.kind == "plugin"


PLUGIN_ERRORS = [
    ("no_such_package_xyz.rules:fix", ["cannot import module 'no_such_package_xyz.rules'", "ModuleNotFoundError"]),
    ("os.path", ["expected 'package.module:function'"]),
    ("os.path:join; rm -rf", ["expected 'package.module:function'"]),
    (3, ["expected 'package.module:function'"]),
    ("os.path:no_such_function", ["module 'os.path' has no attribute 'no_such_function'"]),
    (f"{__name__}:NOT_CALLABLE", [f"'{__name__}:NOT_CALLABLE' is not callable"]),
]


@pytest.mark.parametrize("spec, expected", PLUGIN_ERRORS, ids=[str(i) for i in range(len(PLUGIN_ERRORS))])
def test_each_bad_plugin_path_raises_one_config_error_naming_the_key(spec, expected):
    with pytest.raises(ConfigError) as info:
        parse_rules([{"name": "r", "plugin": spec}], SCHEMA)
    message = str(info.value)
    assert message.startswith(f"{RULE}.plugin: ")
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_load_plugin_names_the_key_it_is_given():
    assert load_plugin("os.path:join", "here") is __import__("os").path.join
    with pytest.raises(ConfigError, match=r"^somewhere\.plugin: expected 'package\.module:function'"):
        load_plugin("os.path", "somewhere.plugin")


def test_a_plugin_rule_takes_no_condition():
    with pytest.raises(ConfigError, match=r"a plugin rule takes only name, plugin, description"):
        parse_rules([{"name": "r", "plugin": "os.path:join", "when": WHEN}], SCHEMA)
