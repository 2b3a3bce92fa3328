"""KEY=VALUE overrides of raw params: nested keys and list items, YAML values, named errors."""

from __future__ import annotations

import pytest

from selftrain.errors import ConfigError
from selftrain.overrides import apply_overrides


def test_overrides_reach_nested_lists_and_parse_yaml():
    raw = {"refine": {"rules": [{"name": "r", "when": {"value": 0.5}}], "soft": True}}
    out = apply_overrides(raw, ["refine.rules[0].when.value=0.8", "refine.soft=false"])
    assert out["refine"]["rules"][0]["when"]["value"] == 0.8
    assert out["refine"]["soft"] is False
    assert raw["refine"]["rules"][0]["when"]["value"] == 0.5  # the input is not changed


@pytest.mark.parametrize(
    "override, message",
    [
        ("refine.rules[3].value=1", r"no list item \[3\]|no such key refine.rules\[3\]"),
        ("refine.nothing.value=1", "no such key refine.nothing"),
        ("refine.soft", "expected KEY=VALUE"),
        ("refine.rules[x].value=1", "bad list index"),
    ],
)
def test_bad_overrides_are_named(override, message):
    raw = {"refine": {"rules": [{"name": "r"}], "soft": True}}
    with pytest.raises(ConfigError, match=message):
        apply_overrides(raw, [override])
