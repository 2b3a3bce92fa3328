"""The ``refine:`` section of params.yaml, validated whole before any work.

Schema (defaults in brackets)::

    refine:
      soft: true                 # [true] soft targets (sharpened probs) or one-hot
      temperature: 1.0           # [1.0] > 0; soft target = softmax(log(p) / T)
      threshold: 0.7             # [0.7] global confidence threshold in [0, 1]; null = none
      class_thresholds: {}       # [{}] {class name or index: threshold in [0, 1]}
      min_margin: null           # [null] drop rows with margin < min_margin
      max_entropy: null          # [null] drop rows with entropy > max_entropy (nats)
      agreement: false           # [false] drop rows whose pred differs from prev_pred
      balance:
        enabled: true            # [true] cap and duplicate classes to per_class rows
        per_class: null          # [null] int >= 1; null = median kept count over
                                 #   the classes that kept at least one row (rounded up)
      group_by: null             # [null] column forming groups for group_has/group_count
      rules: []                  # [[]] ordered rules, see below
      min_rule_precision: null   # [null] in [0, 1]: a rule whose precision on the val
                                 #   split is below it is reported and skipped (`val_check`)
      ood: {enabled: false}      # drop out-of-distribution rows (`selftrain.refine.ood_config`)

A rule is ``{name, when, <actions>, description?}`` or ``{name, plugin, description?}``.
Actions: ``drop: true``, ``relabel: <class>``, ``weight: <factor>`` (scales the
row's weight), ``keep: true`` (exempt from every later drop), ``threshold: <t>``
or ``threshold: {<class>: <t>}`` (the row's confidence threshold). ``drop`` does
not combine with other actions. ``plugin: "package.module:function"`` names a
function ``(frame, context) -> frame`` that is imported and checked here.

Every problem raises one `ConfigError` whose message starts with the key path,
e.g. ``refine.rules[2] (name 'island-to-dresser').when.column: unknown column ...``.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from selftrain.errors import ConfigError
from selftrain.refine.conditions import (
    TRUTH_COLUMN,
    Condition,
    Schema,
    column_conditions,
    parse_condition,
    resolve_class,
)
from selftrain.refine.ood_config import OodConfig, parse_ood_config

# Built-in rules, in the order they run after the user's rules; their names are
# reserved so every row's `rules` list and the report stay unambiguous.
# "corrections" is the people's rule (`corrections`), run before every other.
BUILTIN_NAMES = ("corrections", "ood", "threshold", "margin", "entropy", "agreement", "balance")
ACTIONS = ("drop", "relabel", "weight", "keep", "threshold")
RULE_KEYS = ("name", "description", "when", "plugin")
SECTION_KEYS = (
    "soft",
    "temperature",
    "threshold",
    "class_thresholds",
    "min_margin",
    "max_entropy",
    "agreement",
    "balance",
    "group_by",
    "rules",
    "min_rule_precision",
    "ood",
)
BALANCE_KEYS = ("enabled", "per_class")
# Columns a rule or group_by can never read: the list of probabilities has no scalar order.
UNREADABLE_COLUMNS = ("probs",)

Plugin = Callable[..., Any]


@dataclass(frozen=True)
class BalanceConfig:
    enabled: bool = True
    # None: the median kept count over classes with at least one kept row, rounded up.
    per_class: int | None = None


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
    plugin: str | None = None
    description: str = ""
    plugin_fn: Plugin | None = field(default=None, compare=False, repr=False)

    @property
    def where(self) -> str:
        return f"refine.rules[{self.index}] (name {self.name!r})"

    @property
    def kind(self) -> str:
        return "plugin" if self.plugin is not None else "rule"


@dataclass(frozen=True)
class RefineConfig:
    class_names: tuple[str, ...]
    soft: bool = True
    temperature: float = 1.0
    threshold: float | None = 0.7
    # ((class index, threshold), ...) sorted by class index.
    class_thresholds: tuple[tuple[int, float], ...] = ()
    min_margin: float | None = None
    max_entropy: float | None = None
    agreement: bool = False
    balance: BalanceConfig = BalanceConfig()
    group_by: str | None = None
    extra_columns: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    # None: every rule applies; else a rule below this precision on val is skipped.
    min_rule_precision: float | None = None
    ood: OodConfig = OodConfig()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def referenced_columns(self) -> set[str]:
        """Every table column the rules read (to check the table before any work)."""
        columns = {c.column for rule in self.rules for c in column_conditions(rule.when)}
        if self.group_by is not None:
            columns.add(self.group_by)
        return columns


def parse_refine_config(
    raw: Mapping[str, Any] | None,
    class_names: Sequence[str],
    extra_columns: Sequence[str] = (),
) -> RefineConfig:
    """Validate the ``refine:`` params section against the dataset's classes and columns.

    Args:
        raw: the ``refine`` mapping from params.yaml (None or {} gives the defaults).
        class_names: the dataset's class names, index order.
        extra_columns: metadata columns of the manifest that rules may read.

    Raises:
        ConfigError: naming the key path of the first problem.
    """
    names = _class_names(class_names)
    extra = _extra_columns(extra_columns)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"refine: expected a mapping, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in SECTION_KEYS)
    if unknown:
        raise ConfigError(f"refine.{unknown[0]}: unknown key; allowed: {sorted(SECTION_KEYS)}")

    soft = _bool(raw.get("soft", True), "refine.soft")
    temperature = _number(raw.get("temperature", 1.0), "refine.temperature")
    if not 0 < temperature <= 100:
        raise ConfigError(f"refine.temperature: must be in (0, 100], got {temperature!r}")
    threshold = raw.get("threshold", 0.7)
    if threshold is not None:
        threshold = _unit(threshold, "refine.threshold")
    class_thresholds = _class_thresholds(raw.get("class_thresholds", {}), names)
    min_margin = _optional_number(raw.get("min_margin"), "refine.min_margin", low=0.0, high=1.0)
    max_entropy = _optional_number(raw.get("max_entropy"), "refine.max_entropy", low=0.0, high=None)
    agreement = _bool(raw.get("agreement", False), "refine.agreement")
    balance = _balance(raw.get("balance", {}))
    min_rule_precision = _optional_number(
        raw.get("min_rule_precision"), "refine.min_rule_precision", low=0.0, high=1.0
    )

    schema = Schema(class_names=names, extra_columns=extra)
    group_by = raw.get("group_by")
    if group_by is not None:
        group_by = _group_by(group_by, schema)
        schema = Schema(class_names=names, extra_columns=extra, group_by=group_by)
    rules = _rules(raw.get("rules", []), schema)
    return RefineConfig(
        class_names=names,
        soft=soft,
        temperature=temperature,
        threshold=threshold,
        class_thresholds=class_thresholds,
        min_margin=min_margin,
        max_entropy=max_entropy,
        agreement=agreement,
        balance=balance,
        group_by=group_by,
        extra_columns=extra,
        rules=rules,
        min_rule_precision=min_rule_precision,
        ood=parse_ood_config(raw.get("ood")),
    )


def _class_names(class_names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise ConfigError(f"class_names: expected a sequence of names, got {type(class_names).__name__}")
    names = tuple(class_names)
    if len(names) < 2:
        raise ConfigError(f"class_names: need at least 2 classes, got {list(names)}")
    if not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"class_names: every name must be a non-empty string, got {list(names)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"class_names: names must be unique, got {list(names)}")
    return names


def _extra_columns(extra_columns: Sequence[str]) -> tuple[str, ...]:
    if isinstance(extra_columns, str):
        raise ConfigError(f"extra_columns: expected a sequence of column names, got {extra_columns!r}")
    extra = tuple(extra_columns)
    bad = [c for c in extra if not isinstance(c, str)]
    if bad:
        raise ConfigError(f"extra_columns: column names must be strings, got {bad[0]!r}")
    # The manifest may carry ground truth; rules never see it (see conditions.TRUTH_COLUMN).
    return tuple(dict.fromkeys(c for c in extra if c != TRUTH_COLUMN and c not in UNREADABLE_COLUMNS))


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:
        raise ConfigError(f"{where}: number out of range, got {value!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return value


def _unit(value: Any, where: str) -> float:
    value = _number(value, where)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}: must be in [0, 1], got {value!r}")
    return value


def _optional_number(value: Any, where: str, low: float, high: float | None) -> float | None:
    if value is None:
        return None
    value = _number(value, where)
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ConfigError(f"{where}: must be {'in ' if high is not None else ''}{bound}, got {value!r}")
    return value


def _class_thresholds(raw: Any, names: tuple[str, ...]) -> tuple[tuple[int, float], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"refine.class_thresholds: expected a mapping {{class: threshold}}, got {type(raw).__name__}"
        )
    resolved: dict[int, float] = {}
    for key, value in raw.items():
        where = f"refine.class_thresholds.{key}"
        index = resolve_class(key, names, where)
        if index in resolved:
            raise ConfigError(f"{where}: class {names[index]!r} is given twice")
        resolved[index] = _unit(value, where)
    return tuple(sorted(resolved.items()))


def _balance(raw: Any) -> BalanceConfig:
    if raw is None:
        return BalanceConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"refine.balance: expected a mapping with {list(BALANCE_KEYS)}, got {type(raw).__name__}"
        )
    unknown = sorted(str(k) for k in raw if k not in BALANCE_KEYS)
    if unknown:
        raise ConfigError(f"refine.balance.{unknown[0]}: unknown key; allowed: {list(BALANCE_KEYS)}")
    enabled = _bool(raw.get("enabled", True), "refine.balance.enabled")
    per_class = raw.get("per_class")
    if per_class is not None and (isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1):
        raise ConfigError(f"refine.balance.per_class: expected an integer >= 1 or null, got {per_class!r}")
    return BalanceConfig(enabled=enabled, per_class=per_class)


def _group_by(value: Any, schema: Schema) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"refine.group_by: expected a column name or null, got {value!r}")
    if value == TRUTH_COLUMN:
        raise ConfigError(f"refine.group_by: {TRUTH_COLUMN!r} is ground truth and may never be read by rules")
    if value not in schema.known_columns:
        raise ConfigError(f"refine.group_by: unknown column {value!r}; known: {list(schema.known_columns)}")
    return value


def _rules(raw: Any, schema: Schema) -> tuple[Rule, ...]:
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
        weight = _number(raw["weight"], f"{where}.weight")
        if weight < 0:
            raise ConfigError(f"{where}.weight: must be >= 0, got {weight!r}")
        values["weight"] = weight
    if "threshold" in raw:
        values["threshold"] = _rule_threshold(raw["threshold"], schema, f"{where}.threshold")
    return Rule(name=name, index=index, when=when, description=description, **values)


def _rule_threshold(raw: Any, schema: Schema, where: str) -> tuple[tuple[int | None, float], ...]:
    if isinstance(raw, Mapping):
        if not raw:
            raise ConfigError(f"{where}: expected a threshold or a non-empty {{class: threshold}} mapping")
        resolved: dict[int, float] = {}
        for key, value in raw.items():
            index = resolve_class(key, schema.class_names, f"{where}.{key}")
            if index in resolved:
                raise ConfigError(f"{where}.{key}: class {schema.class_names[index]!r} is given twice")
            resolved[index] = _unit(value, f"{where}.{key}")
        return tuple(sorted(resolved.items()))
    return ((None, _unit(raw, where)),)


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


__all__ = [
    "ACTIONS",
    "BUILTIN_NAMES",
    "BalanceConfig",
    "RefineConfig",
    "Rule",
    "load_plugin",
    "parse_refine_config",
]
