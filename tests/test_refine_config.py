"""parse_refine_config: the schema, its defaults, and one clear ConfigError per bad form."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selftrain.errors import ConfigError
from selftrain.refine import BalanceConfig, RefineConfig, parse_refine_config
from selftrain.refine.conditions import AllOf, AnyOf, ColumnCondition, GroupCount, GroupHas, Not

NAMES = ("bed", "island", "dresser", "lamp")
EXTRA = ("group_id", "source", "width")


def parse(raw, extra=EXTRA):
    return parse_refine_config(raw, NAMES, extra)


def test_defaults_are_documented_values():
    cfg = parse({})
    assert cfg == RefineConfig(class_names=NAMES, extra_columns=EXTRA)
    assert cfg.soft is True
    assert cfg.temperature == 1.0
    assert cfg.threshold == 0.7
    assert cfg.class_thresholds == ()
    assert cfg.min_margin is None and cfg.max_entropy is None
    assert cfg.agreement is False
    assert cfg.balance == BalanceConfig(enabled=True, per_class=None)
    assert cfg.group_by is None
    assert cfg.rules == ()
    assert parse(None) == cfg


def test_full_section_parses_and_resolves_class_names():
    cfg = parse(
        {
            "soft": False,
            "temperature": 0.5,
            "threshold": 0.6,
            "class_thresholds": {"lamp": 0.9, "1": 0.8, 0: 0.5},
            "min_margin": 0.1,
            "max_entropy": 1.2,
            "agreement": True,
            "balance": {"enabled": True, "per_class": 10},
            "group_by": "group_id",
            "rules": [
                {
                    "name": "island-to-dresser",
                    "description": "a dresser seen with a bed is not a kitchen island",
                    "when": {"all": [{"column": "pred", "op": "==", "value": "island"}, {"group_has": ["bed"]}]},
                    "relabel": "dresser",
                },
                {"name": "low-conf", "when": {"column": "confidence", "op": "<", "value": 0.9}, "drop": True},
                {
                    "name": "trusted",
                    "when": {"any": [{"not": {"column": "source", "op": "in", "value": ["web"]}}]},
                    "keep": True,
                    "weight": 2,
                    "threshold": {"lamp": 0.3},
                },
                {"name": "two-beds", "when": {"group_count": {"class": 0, "op": ">=", "value": 2}}, "threshold": 0.4},
            ],
        }
    )
    assert cfg.class_thresholds == ((0, 0.5), (1, 0.8), (3, 0.9))
    assert cfg.balance.per_class == 10
    first, second, third, fourth = cfg.rules
    assert first.relabel == 2
    assert first.when == AllOf((ColumnCondition("pred", "==", 1), GroupHas((0,))))
    assert second.drop and second.when == ColumnCondition("confidence", "<", 0.9)
    assert third.keep and third.weight == 2.0 and third.threshold == ((3, 0.3),)
    assert third.when == AnyOf((Not(ColumnCondition("source", "in", ("web",))),))
    assert fourth.when == GroupCount(">=", 2, 0) and fourth.threshold == ((None, 0.4),)
    assert [r.index for r in cfg.rules] == [0, 1, 2, 3]
    assert cfg.referenced_columns() == {"pred", "confidence", "source", "group_id"}


RULE = "refine.rules[0] (name 'r')"


def rule(**body):
    return {"rules": [{"name": "r", **body}]}


WHEN = {"column": "confidence", "op": "<", "value": 0.5}

# (raw section, substrings the single error message must contain)
INVALID = [
    ({"thresold": 0.5}, ["refine.thresold: unknown key", "allowed"]),
    ({"soft": "yes"}, ["refine.soft: expected true or false"]),
    ({"temperature": 0}, ["refine.temperature: must be in (0, 100]"]),
    ({"temperature": "hot"}, ["refine.temperature: expected a number"]),
    ({"threshold": 1.5}, ["refine.threshold: must be in [0, 1]"]),
    ({"threshold": True}, ["refine.threshold: expected a number"]),
    ({"class_thresholds": {"sofa": 0.9}}, ["refine.class_thresholds.sofa: unknown class 'sofa'", "known: ['bed'"]),
    ({"class_thresholds": {"lamp": 0.9, 3: 0.5}}, ["refine.class_thresholds.3: class 'lamp' is given twice"]),
    ({"class_thresholds": [0.9]}, ["refine.class_thresholds: expected a mapping"]),
    ({"min_margin": -0.1}, ["refine.min_margin: must be in [0.0, 1.0]"]),
    ({"max_entropy": "a lot"}, ["refine.max_entropy: expected a number"]),
    ({"agreement": 1}, ["refine.agreement: expected true or false"]),
    ({"balance": True}, ["refine.balance: expected a mapping"]),
    ({"balance": {"per_class": 0}}, ["refine.balance.per_class: expected an integer >= 1"]),
    ({"balance": {"cap": 3}}, ["refine.balance.cap: unknown key"]),
    ({"group_by": "room"}, ["refine.group_by: unknown column 'room'"]),
    ({"group_by": "true_label"}, ["refine.group_by: 'true_label' is ground truth"]),
    ({"rules": {"name": "r"}}, ["refine.rules: expected a list"]),
    ({"rules": ["drop everything"]}, ["refine.rules[0]: expected a mapping"]),
    ({"rules": [{"when": WHEN, "drop": True}]}, ["refine.rules[0].name: required key is missing"]),
    ({"rules": [{"name": 7, "when": WHEN, "drop": True}]}, ["refine.rules[0].name: expected a non-empty string"]),
    ({"rules": [{"name": "threshold", "when": WHEN, "drop": True}]}, ["refine.rules[0].name: 'threshold' is the name of a built-in"]),
    (
        {"rules": [{"name": "a", "when": WHEN, "drop": True}, {"name": "a", "when": WHEN, "drop": True}]},
        ["refine.rules[1] (name 'a').name: duplicate rule name 'a'"],
    ),
    (rule(when=WHEN), [f"{RULE}: no action"]),
    (rule(when=WHEN, explode=True), [f"{RULE}.explode: unknown key", "actions: ['drop', 'relabel'"]),
    (rule(drop=True), [f"{RULE}.when: required key is missing"]),
    (rule(when=WHEN, drop="yes"), [f"{RULE}.drop: expected true"]),
    (rule(when=WHEN, keep=False), [f"{RULE}.keep: expected true"]),
    (rule(when=WHEN, drop=True, relabel="lamp"), [f"{RULE}.relabel: drop cannot be combined with relabel"]),
    (rule(when=WHEN, relabel="sofa"), [f"{RULE}.relabel: unknown class 'sofa'"]),
    (rule(when=WHEN, relabel=4), [f"{RULE}.relabel: unknown class index 4"]),
    (rule(when=WHEN, relabel=1.0), [f"{RULE}.relabel: expected a class name or index"]),
    (rule(when=WHEN, weight="heavy"), [f"{RULE}.weight: expected a number"]),
    (rule(when=WHEN, weight=-1), [f"{RULE}.weight: must be >= 0"]),
    (rule(when=WHEN, threshold=2), [f"{RULE}.threshold: must be in [0, 1]"]),
    (rule(when=WHEN, threshold={"sofa": 0.5}), [f"{RULE}.threshold.sofa: unknown class 'sofa'"]),
    (rule(when=WHEN, threshold={}), [f"{RULE}.threshold: expected a threshold or a non-empty"]),
    (rule(when=WHEN, description=3, drop=True), [f"{RULE}.description: expected a string"]),
    (rule(when="confidence < 0.5", drop=True), [f"{RULE}.when: expected a condition mapping"]),
    (rule(when={"column": "colour", "op": "==", "value": "red"}, drop=True), [f"{RULE}.when.column: unknown column 'colour'", "known: ["]),
    (rule(when={"column": "true_label", "op": "==", "value": 1}, drop=True), [f"{RULE}.when.column: 'true_label' is ground truth"]),
    (rule(when={"column": "probs", "op": "==", "value": 1}, drop=True), [f"{RULE}.when.column: unknown column 'probs'"]),
    (rule(when={"column": 3, "op": "==", "value": 1}, drop=True), [f"{RULE}.when.column: expected a column name"]),
    (rule(when={"column": "pred", "op": "=~", "value": "bed"}, drop=True), [f"{RULE}.when.op: unknown op '=~'", "ops: ['=='"]),
    (rule(when={"column": "pred", "value": "bed"}, drop=True), [f"{RULE}.when.op: required key is missing"]),
    (rule(when={"column": "pred", "op": "==", "value": "sofa"}, drop=True), [f"{RULE}.when.value: unknown class 'sofa'"]),
    (rule(when={"column": "pred", "op": "<", "value": "bed"}, drop=True), [f"{RULE}.when.op: op '<' does not apply to class column 'pred'"]),
    (rule(when={"column": "pred", "op": "in", "value": "bed"}, drop=True), [f"{RULE}.when.value: op 'in' expects a list"]),
    (rule(when={"column": "pred", "op": "in", "value": ["bed", "sofa"]}, drop=True), [f"{RULE}.when.value[1]: unknown class 'sofa'"]),
    (rule(when={"column": "confidence", "op": "<"}, drop=True), [f"{RULE}.when.value: required key is missing"]),
    (rule(when={"column": "confidence", "op": "<", "value": "high"}, drop=True), [f"{RULE}.when.value: expected a number"]),
    (rule(when={"column": "item_id", "op": "==", "value": 3}, drop=True), [f"{RULE}.when.value: expected a string"]),
    (rule(when={"column": "source", "op": "==", "value": None}, drop=True), [f"{RULE}.when.value: null is not a value"]),
    (rule(when={"column": "source", "op": "==", "value": [1]}, drop=True), [f"{RULE}.when.value: expected a string, number or boolean"]),
    (rule(when={"column": "source", "op": "is_null", "value": 1}, drop=True), [f"{RULE}.when.value: op 'is_null' takes no value"]),
    (rule(when={"column": "source", "op": "==", "value": "a", "why": 1}, drop=True), [f"{RULE}.when.why: unknown key"]),
    (rule(when={"where": "x"}, drop=True), [f"{RULE}.when.where: unknown condition key"]),
    (rule(when={"all": [WHEN], "any": [WHEN]}, drop=True), [f"{RULE}.when: a condition needs exactly one of"]),
    (rule(when={"all": []}, drop=True), [f"{RULE}.when.all: expected a non-empty list"]),
    (rule(when={"any": WHEN}, drop=True), [f"{RULE}.when.any: expected a non-empty list"]),
    (
        rule(when={"all": [WHEN, {"any": [WHEN, {"not": {"column": "colour", "op": "is_null"}}]}]}, drop=True),
        [f"{RULE}.when.all[1].any[1].not.column: unknown column 'colour'"],
    ),
    (rule(when={"not": WHEN, "op": "=="}, drop=True), [f"{RULE}.when.op: unknown key next to 'not'"]),
    (rule(when={"group_has": ["bed"]}, drop=True), [f"{RULE}.when.group_has: group conditions need refine.group_by"]),
    (
        {"group_by": "group_id", **rule(when={"group_has": ["bed", "sofa"]}, drop=True)},
        [f"{RULE}.when.group_has[1]: unknown class 'sofa'"],
    ),
    ({"group_by": "group_id", **rule(when={"group_has": []}, drop=True)}, [f"{RULE}.when.group_has: expected a non-empty list"]),
    (
        {"group_by": "group_id", **rule(when={"group_count": {"class": "bed", "op": "~", "value": 1}}, drop=True)},
        [f"{RULE}.when.group_count.op: unknown op '~'"],
    ),
    (
        {"group_by": "group_id", **rule(when={"group_count": {"class": "bed", "op": ">=", "value": -1}}, drop=True)},
        [f"{RULE}.when.group_count.value: expected an integer >= 0"],
    ),
    (
        {"group_by": "group_id", **rule(when={"group_count": {"klass": "bed", "op": ">=", "value": 1}}, drop=True)},
        [f"{RULE}.when.group_count.klass: unknown key"],
    ),
]


@pytest.mark.parametrize("raw, expected", INVALID, ids=[str(i) for i in range(len(INVALID))])
def test_each_invalid_form_raises_one_config_error_naming_the_key(raw, expected):
    with pytest.raises(ConfigError) as info:
        parse(raw)
    message = str(info.value)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_error_names_the_index_and_name_of_a_later_rule():
    raw = {
        "rules": [
            {"name": "fine", "when": WHEN, "drop": True},
            {"name": "ok", "when": WHEN, "weight": 0.5},
            {"name": "island-to-dresser", "when": {"column": "colour", "op": "==", "value": "red"}, "relabel": "dresser"},
        ]
    }
    with pytest.raises(ConfigError, match=r"^refine\.rules\[2\] \(name 'island-to-dresser'\)\.when\.column: unknown column 'colour'; known: \["):
        parse(raw)


def test_true_label_stays_unreadable_even_when_listed_as_extra_column():
    raw = rule(when={"column": "true_label", "op": "==", "value": 1}, drop=True)
    with pytest.raises(ConfigError, match="ground truth"):
        parse(raw, extra=("true_label", "source"))
    assert "true_label" not in parse({}, extra=("true_label",)).extra_columns


@pytest.mark.parametrize("class_names", [("only",), ("a", "a"), ("a", ""), "ab"])
def test_bad_class_names_raise_config_error(class_names):
    with pytest.raises(ConfigError, match="class_names"):
        parse_refine_config({}, class_names)


# --- fuzz: random sections either parse or raise ConfigError, never anything else ---

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["bed", "island", "3", "9", "", "x", "group_id", "==", "in", "true_label", "\u0663"]),
    st.text(max_size=5),
)


def mostly(good, bad=scalars, odds=3):
    """Well-formed values `odds` times as often as garbage, so the fuzz reaches the deep checks."""
    return st.sampled_from([True] * odds + [False]).flatmap(lambda ok: good if ok else bad)


values = st.one_of(
    st.sampled_from(["bed", "lamp", 0, 3, "2", 0.5, 1, "web", True]),
    st.floats(0, 1),
    scalars,
)
columns = st.sampled_from(
    ["pred", "label", "prev_pred", "second_pred", "confidence", "weight", "teacher_gen", "item_id", "source",
     "width", "group_id", "true_label", "probs", "nope"]
)
ops = st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "not_null", "=~", ""])
column_conditions = st.one_of(
    st.fixed_dictionaries(
        {"column": st.sampled_from(["pred", "label", "second_pred"]), "op": st.sampled_from(["==", "!=", "in"])},
        optional={"value": st.one_of(values, st.lists(values, max_size=3))},
    ),
    st.fixed_dictionaries(
        {"column": st.sampled_from(["confidence", "margin", "width"]), "op": st.sampled_from(["<", ">=", "not_in"])},
        optional={"value": st.one_of(st.floats(0, 1), st.lists(st.floats(0, 1), max_size=2))},
    ),
    st.fixed_dictionaries(
        {"column": mostly(columns), "op": mostly(ops)},
        optional={"value": st.one_of(values, st.lists(values, max_size=3)), "extra": scalars},
    ),
)
group_conditions = st.one_of(
    st.fixed_dictionaries({"group_has": mostly(st.lists(values, max_size=3))}),
    st.fixed_dictionaries(
        {"group_count": mostly(st.fixed_dictionaries({"op": ops, "value": values}, optional={"class": values}))}
    ),
)
conditions = st.recursive(
    mostly(st.one_of(column_conditions, group_conditions), odds=8),
    lambda inner: st.one_of(
        st.fixed_dictionaries({"all": mostly(st.lists(inner, min_size=1, max_size=3))}),
        st.fixed_dictionaries({"any": mostly(st.lists(inner, min_size=1, max_size=3))}),
        st.fixed_dictionaries({"not": inner}),
        st.dictionaries(st.sampled_from(["all", "any", "not", "column", "zzz"]), inner, max_size=2),
    ),
    max_leaves=5,
)
actions = st.fixed_dictionaries(
    {},
    optional={
        "drop": mostly(st.just(True), odds=8),
        "keep": mostly(st.just(True), odds=8),
        "relabel": mostly(st.sampled_from(["bed", "dresser", 2, "3"]), odds=8),
        "weight": mostly(st.floats(0, 4), odds=8),
        "threshold": mostly(
            st.one_of(st.floats(0, 1), st.dictionaries(st.sampled_from(["bed", "lamp", "9", "sofa", 1]), values, max_size=2))
        ),
        "description": mostly(st.text(max_size=5), odds=8),
    },
)
condition_rules = st.builds(
    lambda name, when, acts: {"name": name, "when": when, **acts},
    mostly(st.sampled_from(["a", "b", "c", "d"]), st.one_of(st.sampled_from(["threshold", ""]), scalars), odds=8),
    conditions,
    actions,
)
plugin_rules = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["p", "q"]),
        "plugin": st.sampled_from(
            ["", "x", "os.path:join", "os.path:sep", "no_such_mod_q:f", "os.path:nope", "a b:c", ":", "os:", 3]
        ),
    },
    optional={"when": conditions, "description": scalars},
)
rule_lists = st.lists(mostly(st.one_of(condition_rules, plugin_rules), odds=8), max_size=4)
sections = st.fixed_dictionaries(
    {},
    optional={
        "soft": mostly(st.booleans(), odds=15),
        "temperature": mostly(st.floats(0.01, 10), odds=15),
        "threshold": mostly(st.one_of(st.none(), st.floats(0, 1)), odds=15),
        "class_thresholds": mostly(
            st.dictionaries(st.sampled_from(["bed", "lamp", "9", 3, "3", True, None, 2.0]), mostly(st.floats(0, 1)), max_size=3),
            odds=15,
        ),
        "min_margin": mostly(st.one_of(st.none(), st.floats(0, 1)), odds=15),
        "max_entropy": mostly(st.one_of(st.none(), st.floats(0, 3)), odds=15),
        "agreement": mostly(st.booleans(), odds=15),
        "balance": mostly(
            st.fixed_dictionaries({}, optional={"enabled": mostly(st.booleans()), "per_class": mostly(st.integers(1, 50))}),
            odds=15,
        ),
        "group_by": mostly(st.sampled_from(["group_id", "source", None]), st.one_of(columns, scalars), odds=15),
        "rules": mostly(rule_lists, odds=15),
    },
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.one_of(sections, sections, sections, scalars, st.dictionaries(st.text(max_size=4), scalars, max_size=2)))
def test_fuzzed_sections_parse_or_raise_config_error(raw):
    try:
        cfg = parse(raw)
    except ConfigError as exc:
        assert str(exc).startswith(("refine", "class_names")), str(exc)
    else:
        assert isinstance(cfg, RefineConfig)
