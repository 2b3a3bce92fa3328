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
function ``(frame, context) -> frame`` that is imported and checked at parse time
(`selftrain.refine.rule_config` parses each rule).

The caller passes the run's ``task`` (``multiclass``, the default, or ``multilabel``).
A multi-label run's rules read and change each image's label set: conditions
``labels_has_all``, ``labels_has_any``, ``labels_count``, ``score_of``, actions
``add_label: <class>`` and ``remove_label: <class>`` (`selftrain.refine.label_rules`
applies them); those keys in a multiclass run are an error naming the rule and key.

Every problem raises one `ConfigError` whose message starts with the key path,
e.g. ``refine.rules[2] (name 'island-to-dresser').when.column: unknown column ...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from selftrain.errors import ConfigError
from selftrain.refine.conditions import TRUTH_COLUMN, TRUTH_LABELS_COLUMN, Schema, column_conditions
# Rule and its constants live with the rule parser; re-exported for callers of this module.
from selftrain.refine.rule_config import ACTIONS, BUILTIN_NAMES, Rule, class_threshold_map, load_plugin, parse_rules
from selftrain.refine.values import check_bool, check_number, check_optional_number, check_unit
from selftrain.refine.ood_config import OodConfig, parse_ood_config

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
TASKS = ("multiclass", "multilabel")
# Columns a rule or group_by can never read: the list of probabilities has no scalar order.
UNREADABLE_COLUMNS = ("probs",)


@dataclass(frozen=True)
class BalanceConfig:
    enabled: bool = True
    # None: the median kept count over classes with at least one kept row, rounded up.
    per_class: int | None = None


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
    task: str = "multiclass"

    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"

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
    task: str = "multiclass",
) -> RefineConfig:
    """Validate the ``refine:`` params section against the dataset's classes and columns.

    Args:
        raw: the ``refine`` mapping from params.yaml (None or {} gives the defaults).
        class_names: the dataset's class names, index order.
        extra_columns: metadata columns of the manifest that rules may read.
        task: ``multiclass`` or ``multilabel``; decides which rule keys exist.

    Raises:
        ConfigError: naming the key path of the first problem.
    """
    if task not in TASKS:
        raise ConfigError(f"task: expected one of {list(TASKS)}, got {task!r}")
    names = _class_names(class_names)
    extra = _extra_columns(extra_columns)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"refine: expected a mapping, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in SECTION_KEYS)
    if unknown:
        raise ConfigError(f"refine.{unknown[0]}: unknown key; allowed: {sorted(SECTION_KEYS)}")

    soft = check_bool(raw.get("soft", True), "refine.soft")
    temperature = check_number(raw.get("temperature", 1.0), "refine.temperature")
    if not 0 < temperature <= 100:
        raise ConfigError(f"refine.temperature: must be in (0, 100], got {temperature!r}")
    threshold = raw.get("threshold", 0.7)
    if threshold is not None:
        threshold = check_unit(threshold, "refine.threshold")
    class_thresholds = _class_thresholds(raw.get("class_thresholds", {}), names)
    min_margin = check_optional_number(raw.get("min_margin"), "refine.min_margin", low=0.0, high=1.0)
    max_entropy = check_optional_number(raw.get("max_entropy"), "refine.max_entropy", low=0.0, high=None)
    agreement = check_bool(raw.get("agreement", False), "refine.agreement")
    balance = _balance(raw.get("balance", {}))
    min_rule_precision = check_optional_number(
        raw.get("min_rule_precision"), "refine.min_rule_precision", low=0.0, high=1.0
    )

    multilabel = task == "multilabel"
    schema = Schema(class_names=names, extra_columns=extra, multilabel=multilabel)
    group_by = raw.get("group_by")
    if group_by is not None:
        group_by = _group_by(group_by, schema)
        schema = Schema(class_names=names, extra_columns=extra, group_by=group_by, multilabel=multilabel)
    rules = parse_rules(raw.get("rules", []), schema)
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
        task=task,
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
    hidden = (TRUTH_COLUMN, TRUTH_LABELS_COLUMN, *UNREADABLE_COLUMNS)
    return tuple(dict.fromkeys(c for c in extra if c not in hidden))


def _class_thresholds(raw: Any, names: tuple[str, ...]) -> tuple[tuple[int, float], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"refine.class_thresholds: expected a mapping {{class: threshold}}, got {type(raw).__name__}"
        )
    return class_threshold_map(raw, names, "refine.class_thresholds")


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
    enabled = check_bool(raw.get("enabled", True), "refine.balance.enabled")
    per_class = raw.get("per_class")
    if per_class is not None and (isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1):
        raise ConfigError(f"refine.balance.per_class: expected an integer >= 1 or null, got {per_class!r}")
    return BalanceConfig(enabled=enabled, per_class=per_class)


def _group_by(value: Any, schema: Schema) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"refine.group_by: expected a column name or null, got {value!r}")
    if value in (TRUTH_COLUMN, TRUTH_LABELS_COLUMN):
        raise ConfigError(f"refine.group_by: {value!r} is ground truth and may never be read by rules")
    if value not in schema.known_columns:
        raise ConfigError(f"refine.group_by: unknown column {value!r}; known: {list(schema.known_columns)}")
    return value


__all__ = [
    "ACTIONS",
    "BUILTIN_NAMES",
    "BalanceConfig",
    "RefineConfig",
    "Rule",
    "load_plugin",
    "parse_refine_config",
]
