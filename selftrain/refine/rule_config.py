"""One entry of ``refine.rules``: the `Rule` type, its parsing, and the plug-in import.

A rule is ``{name, when, <actions>, description?}`` or ``{name, plugin, description?}``;
see `selftrain.refine.config` for the whole section. Every problem raises one
`ConfigError` whose message starts with ``refine.rules[i] (name '...')``.

The run's task (`Schema.multilabel`) decides which actions exist: ``relabel`` and
``threshold`` act on a row's one class (multiclass); ``add_label`` and ``remove_label``
on an image's label set (multi-label); ``drop``, ``weight`` and ``keep`` on both.
Plug-ins see the multiclass table only.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from selftrain.errors import ConfigError
from selftrain.refine.condition_parsing import parse_condition, resolve_class
from selftrain.refine.conditions import Condition, Schema
from selftrain.refine.values import check_number, check_unit

# Built-in rules, in the order they run after the user's rules; their names are
# reserved so every row's `rules` list and the report stay unambiguous.
# "corrections" is the people's rule (`corrections`), run before every other.
BUILTIN_NAMES = ("corrections", "ood", "threshold", "margin", "entropy", "agreement", "balance")
ACTIONS = ("drop", "relabel", "weight", "keep", "threshold", "add_label", "remove_label")
MULTICLASS_ACTIONS = ("relabel", "threshold")
LABEL_SET_ACTIONS = ("add_label", "remove_label")
RULE_KEYS = ("name", "description", "when", "plugin")

Plugin = Callable[..., Any]


@dataclass(frozen=True)
class Rule:
    """One entry of ``refine.rules``: a condition and its actions, or a plug-in."""

    name: str
    index: int
    when: Condition | None = None
    drop: bool = False
    relabel: int | None = None
    weight: float | None = None
    keep: bool = False
    # ((class index or None for any class, threshold), ...); empty: no override.
    threshold: tuple[tuple[int | None, float], ...] = ()
    # Multi-label: the class index added to / removed from the image's label set.
    add_label: int | None = None
    remove_label: int | None = None
    plugin: str | None = None
    description: str = ""
    plugin_fn: Plugin | None = field(default=None, compare=False, repr=False)

    @property
    def where(self) -> str:
        return f"refine.rules[{self.index}] (name {self.name!r})"

    @property
    def kind(self) -> str:
        return "plugin" if self.plugin is not None else "rule"


def parse_rules(raw: Any, schema: Schema) -> tuple[Rule, ...]:
    """Validate ``refine.rules`` in order; rule names are unique and not built-in names."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"refine.rules: expected a list of rules, got {type(raw).__name__}")
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        rule = _rule(entry, index, schema)
        if rule.name in seen:
            raise ConfigError(f"{rule.where}.name: duplicate rule name {rule.name!r}")
        seen.add(rule.name)
        rules.append(rule)
    return tuple(rules)


def _rule(raw: Any, index: int, schema: Schema) -> Rule:
    at = f"refine.rules[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{at}: expected a mapping with a name and actions, got {type(raw).__name__}")
    if "name" not in raw:
        raise ConfigError(f"{at}.name: required key is missing")
    name = raw["name"]
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{at}.name: expected a non-empty string, got {name!r}")
    if name in BUILTIN_NAMES:
        raise ConfigError(f"{at}.name: {name!r} is the name of a built-in rule; built-ins: {list(BUILTIN_NAMES)}")
    where = f"{at} (name {name!r})"
    unknown = sorted(str(k) for k in raw if k not in (*RULE_KEYS, *ACTIONS))
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}: unknown key; actions: {list(ACTIONS)}; other keys: {list(RULE_KEYS)}"
        )
    description = raw.get("description", "")
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise ConfigError(f"{where}.description: expected a string, got {description!r}")

    if "plugin" in raw:
        if schema.multilabel:
            raise ConfigError(
                f"{where}.plugin: plug-in rules see the multiclass table; not available in a multilabel run"
            )
        others = sorted(str(k) for k in raw if k not in ("name", "description", "plugin"))
        if others:
            raise ConfigError(
                f"{where}.{others[0]}: a plugin rule takes only name, plugin, description; "
                "the function decides which rows it changes"
            )
        spec = raw["plugin"]
        return Rule(
            name=name,
            index=index,
            plugin=spec,
            description=description,
            plugin_fn=load_plugin(spec, f"{where}.plugin"),
        )

    actions = [a for a in ACTIONS if a in raw]
    if not actions:
        raise ConfigError(f"{where}: no action; give one of {list(ACTIONS)} (with when:) or plugin:")
    _check_task(actions, schema.multilabel, where)
    if "when" not in raw:
        raise ConfigError(f"{where}.when: required key is missing (the condition selecting rows)")
    when = parse_condition(raw["when"], schema, f"{where}.when")
    if "drop" in raw and len(actions) > 1:
        other = next(a for a in actions if a != "drop")
        raise ConfigError(f"{where}.{other}: drop cannot be combined with {other}; a dropped row is final")

    values: dict[str, Any] = {}
    for flag in ("drop", "keep"):
        if flag in raw and raw[flag] is not True:
            raise ConfigError(f"{where}.{flag}: expected true (omit the key otherwise), got {raw[flag]!r}")
        values[flag] = flag in raw
    if "relabel" in raw:
        values["relabel"] = resolve_class(raw["relabel"], schema.class_names, f"{where}.relabel")
    if "weight" in raw:
        weight = check_number(raw["weight"], f"{where}.weight")
        if weight < 0:
            raise ConfigError(f"{where}.weight: must be >= 0, got {weight!r}")
        values["weight"] = weight
    if "threshold" in raw:
        values["threshold"] = _rule_threshold(raw["threshold"], schema, f"{where}.threshold")
    for action in LABEL_SET_ACTIONS:
        if action in raw:
            values[action] = resolve_class(raw[action], schema.class_names, f"{where}.{action}")
    if "add_label" in values and values.get("add_label") == values.get("remove_label"):
        same = schema.class_names[values["add_label"]]
        raise ConfigError(f"{where}.remove_label: the rule adds and removes the same label {same!r}")
    return Rule(name=name, index=index, when=when, description=description, **values)


def _check_task(actions: list[str], multilabel: bool, where: str) -> None:
    """Each action exists in the run's task: label-set actions in multilabel, relabel/threshold in multiclass."""
    for action in actions:
        if not multilabel and action in LABEL_SET_ACTIONS:
            raise ConfigError(
                f"{where}.{action}: a label-set action needs task multilabel (each image's `labels` set); "
                "this run is multiclass"
            )
        if multilabel and action in MULTICLASS_ACTIONS:
            raise ConfigError(
                f"{where}.{action}: acts on one class per row (multiclass); in a multilabel run "
                "use add_label / remove_label"
            )


def _rule_threshold(raw: Any, schema: Schema, where: str) -> tuple[tuple[int | None, float], ...]:
    if isinstance(raw, Mapping):
        if not raw:
            raise ConfigError(f"{where}: expected a threshold or a non-empty {{class: threshold}} mapping")
        return class_threshold_map(raw, schema.class_names, where)
    return ((None, check_unit(raw, where)),)


def class_threshold_map(
    raw: Mapping[Any, Any], class_names: tuple[str, ...], where: str
) -> tuple[tuple[int, float], ...]:
    """``{class name or index: threshold in [0, 1]}`` as ((class index, threshold), ...) by index;
    each problem names ``<where>.<key>`` (``refine.class_thresholds`` and a rule's ``threshold``)."""
    resolved: dict[int, float] = {}
    for key, value in raw.items():
        index = resolve_class(key, class_names, f"{where}.{key}")
        if index in resolved:
            raise ConfigError(f"{where}.{key}: class {class_names[index]!r} is given twice")
        resolved[index] = check_unit(value, f"{where}.{key}")
    return tuple(sorted(resolved.items()))


def load_plugin(spec: Any, where: str) -> Plugin:
    """Import ``package.module:function`` (the path the user wrote, nothing else)."""
    form = "expected 'package.module:function'"
    if not isinstance(spec, str):
        raise ConfigError(f"{where}: {form}, got {spec!r}")
    module_name, sep, attr = spec.partition(":")
    parts = module_name.split(".") + attr.split(".")
    if not sep or not all(part.isidentifier() for part in parts):
        raise ConfigError(f"{where}: {form}, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure is the user's path or module
        raise ConfigError(f"{where}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"{where}: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(target):
        raise ConfigError(f"{where}: {spec!r} is not callable (got {type(target).__name__})")
    return target
