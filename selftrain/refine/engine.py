"""Refine one round's pseudo-labels: user rules, then built-ins, then targets.

Order of application (each step sees what the previous ones did):

1. derived columns: ``second_pred``/``second_confidence`` from ``probs``;
   ``prev_pred``/``prev_confidence`` from ``context.previous`` by ``item_id``;
2. the user's ``refine.rules``, in params order (condition rules and plug-ins), so
   a relabel happens before the per-class threshold of the new class is applied,
   and ``keep`` can protect rows from the built-in filters;
3. built-in filters: ``threshold`` (confidence below the threshold of the row's
   current label: a rule's override, else ``class_thresholds``, else ``threshold``),
   ``margin``, ``entropy``, ``agreement`` (pred differs from prev_pred; rows with no
   previous prediction are not judged);
4. ``balance``: classes above ``per_class`` keep their ``keep``-exempt rows, then the
   most confident (ties: input order) and drop the rest; classes below it raise
   ``copies`` so the class totals ``per_class`` training rows;
5. targets from the final labels: soft (softmax(log(p) / T)) unless the row was
   relabelled away from its pred, or hard (one-hot), by ``refine.soft``.

Actions apply only to rows still kept: a dropped row is final, ``dropped_by`` names
the first rule that dropped it. Ground truth (``true_label``) is removed from the
table before any rule runs and is handed only to the report's accounting.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from selftrain.errors import ConfigError, DataError, SelftrainError
from selftrain.refine.conditions import (
    TRUTH_COLUMN,
    RowView,
    Schema,
    column_conditions,
    evaluate,
    uses_groups,
)
from selftrain.refine.config import RefineConfig, Rule
from selftrain.refine.report import RuleStats, build_report

REQUIRED_COLUMNS = ("item_id", "pred", "confidence", "margin", "entropy", "probs")
DERIVED_COLUMNS = ("second_pred", "second_confidence", "prev_pred", "prev_confidence")
RESULT_COLUMNS = ("label", "target", "weight", "kept", "copies", "rules", "dropped_by")
# What a plug-in may change in the frame it returns; everything else is read-only.
PLUGIN_WRITABLE = ("label", "weight", "kept")


@dataclass(frozen=True)
class RefineContext:
    class_names: tuple[str, ...]
    generation: int
    # The previous round's pseudo_labels table (item_id, pred, confidence, ...); None in round 1.
    previous: pd.DataFrame | None = None


@dataclass(frozen=True)
class RefineResult:
    table: pd.DataFrame
    report: dict


@dataclass
class _State:
    """Per-row refinement state, positional (N,) arrays."""

    labels: np.ndarray  # int64 current class; a dropped row keeps its last one
    kept: np.ndarray  # bool
    exempt: np.ndarray  # bool, set by `keep`: exempt from later drops
    weight: np.ndarray  # float64
    copies: np.ndarray  # int64
    dropped_by: list[str | None]
    rules: list[list[str]]
    # Per-row threshold overrides set by rules: {class index or None (any class): t}.
    thresholds: list[dict[int | None, float] | None]

    @classmethod
    def start(cls, pred: np.ndarray) -> "_State":
        n = len(pred)
        return cls(
            labels=pred.copy(),
            kept=np.ones(n, dtype=bool),
            exempt=np.zeros(n, dtype=bool),
            weight=np.ones(n, dtype=np.float64),
            copies=np.ones(n, dtype=np.int64),
            dropped_by=[None] * n,
            rules=[[] for _ in range(n)],
            thresholds=[None] * n,
        )

    def drop(self, mask: np.ndarray, stats: RuleStats) -> np.ndarray:
        """Drop the live, non-exempt rows of `mask`; return the rows actually dropped."""
        hit = mask & self.kept & ~self.exempt
        stats.exempted += int((mask & self.kept & self.exempt).sum())
        rows = np.flatnonzero(hit)
        stats.record_drop(rows, self.labels[rows].copy())
        self.kept[rows] = False
        for i in rows.tolist():
            self.dropped_by[i] = stats.name
        return hit

    def relabel(self, mask: np.ndarray, new: np.ndarray, stats: RuleStats) -> np.ndarray:
        """Give the live rows of `mask` their class from `new` (N,); return the rows changed."""
        hit = mask & self.kept & (self.labels != new)
        rows = np.flatnonzero(hit)
        stats.record_relabel(rows, self.labels[rows].copy(), new[rows].copy())
        self.labels[rows] = new[rows]
        return hit

    def note(self, mask: np.ndarray, stats: RuleStats) -> None:
        rows = np.flatnonzero(mask)
        stats.changed += len(rows)
        for i in rows.tolist():
            self.rules[i].append(stats.name)


def refine(pseudo_labels: pd.DataFrame, config: RefineConfig, context: RefineContext) -> RefineResult:
    """Apply the rules and built-ins to one round's pseudo-labels.

    Args:
        pseudo_labels: the infer stage's table, one row per unlabeled item.
        config: from `parse_refine_config`.
        context: class names, generation and the previous round's table.

    Returns:
        The table (same rows and order, all input columns plus the refinement
        columns) and the JSON-serialisable rules report.

    Raises:
        DataError: the table (or context.previous) lacks a column or holds bad values.
        ConfigError: the context's class names are not the config's.
    """
    _check_context(config, context)
    if not isinstance(pseudo_labels, pd.DataFrame):
        raise DataError(f"pseudo_labels: expected a pandas DataFrame, got {type(pseudo_labels).__name__}")
    # Firewall: nothing below this line but the report's accounting sees ground truth.
    inputs = pseudo_labels.drop(columns=[TRUTH_COLUMN], errors="ignore").reset_index(drop=True)
    pred, probs = _validate_inputs(inputs, config.num_classes)
    _check_rule_columns(config, inputs)

    base = inputs.copy(deep=False)
    second_pred, second_confidence = _second_best(probs, pred)
    base["second_pred"] = pd.array(second_pred, dtype="Int64")
    base["second_confidence"] = second_confidence
    prev_pred, prev_confidence = _previous(inputs, context.previous, config.num_classes)
    base["prev_pred"] = prev_pred
    base["prev_confidence"] = prev_confidence
    _check_rule_types(config, base)

    group_codes, n_groups = _groups(config, base)
    plugin_context = dataclasses.replace(context, previous=_without_truth(context.previous))
    state = _State.start(pred)
    stats: list[RuleStats] = []
    for rule in config.rules:
        if rule.plugin is not None:
            stats.append(_apply_plugin(rule, base, state, plugin_context, config.num_classes))
        else:
            stats.append(_apply_rule(rule, base, state, group_codes, n_groups))
    confidence = base["confidence"].to_numpy(dtype=np.float64)
    stats.append(_threshold(config, confidence, state))
    margin = base["margin"].to_numpy(dtype=np.float64)
    entropy = base["entropy"].to_numpy(dtype=np.float64)
    stats.append(_limit("margin", config.min_margin, lambda bound: margin < bound, state))
    stats.append(_limit("entropy", config.max_entropy, lambda bound: entropy > bound, state))
    stats.append(_agreement(config, context.previous is not None, pred, prev_pred, state))
    stats.append(_balance(config, confidence, state))

    targets = _targets(config, probs, pred, state)
    table = _assemble(pseudo_labels, base, context.previous is not None, state, targets)
    report = build_report(
        config, context.generation, stats, pred, state.labels, state.kept, state.copies, pseudo_labels
    )
    return RefineResult(table=table, report=report)


def _check_context(config: RefineConfig, context: RefineContext) -> None:
    if not isinstance(context, RefineContext):
        raise TypeError(f"context: expected a RefineContext, got {type(context).__name__}")
    if tuple(context.class_names) != config.class_names:
        raise ConfigError(
            f"refine: context.class_names {list(context.class_names)} differ from the classes the "
            f"config was parsed with {list(config.class_names)}"
        )
    if isinstance(context.generation, bool) or not isinstance(context.generation, (int, np.integer)):
        raise ConfigError(f"refine: context.generation must be an integer, got {context.generation!r}")


def _row(frame: pd.DataFrame, i: int) -> str:
    return f"row {i} (item_id {frame['item_id'].iloc[i]!r})"


def _validate_inputs(inputs: pd.DataFrame, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Check the contract columns; return pred (N,) int64 and probs (N, C) float64."""
    missing = [c for c in REQUIRED_COLUMNS if c not in inputs.columns]
    if missing:
        raise DataError(f"pseudo_labels: missing columns {missing}; has {list(inputs.columns)}")
    reserved = [c for c in (*DERIVED_COLUMNS, *RESULT_COLUMNS) if c in inputs.columns]
    if reserved:
        raise DataError(
            f"pseudo_labels: already has refinement columns {reserved}; refine reads the infer "
            "stage's table, not a refined one"
        )
    ids = inputs["item_id"]
    if ids.isna().any():
        raise DataError(f"pseudo_labels.item_id: null at row {int(np.flatnonzero(ids.isna().to_numpy())[0])}")
    duplicated = ids.duplicated()
    if duplicated.any():
        raise DataError(f"pseudo_labels.item_id: duplicate {ids[duplicated].iloc[0]!r}")
    pred = _class_column(inputs, "pred", num_classes, "pseudo_labels")
    for name in ("confidence", "margin", "entropy"):
        column = inputs[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            raise DataError(f"pseudo_labels.{name}: expected numbers, got dtype {column.dtype}")
        if column.isna().any():
            raise DataError(f"pseudo_labels.{name}: null at {_row(inputs, int(np.flatnonzero(column.isna().to_numpy())[0]))}")
    return pred, _probs(inputs, num_classes)


def _class_column(frame: pd.DataFrame, name: str, num_classes: int, table: str) -> np.ndarray:
    column = frame[name]
    if column.isna().any():
        raise DataError(f"{table}.{name}: null at {_row(frame, int(np.flatnonzero(column.isna().to_numpy())[0]))}")
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        raise DataError(f"{table}.{name}: expected class indices, got dtype {column.dtype}")
    values = column.to_numpy(dtype=np.float64)
    bad = (values != np.round(values)) | (values < 0) | (values >= num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{table}.{name}: {values[i]:g} at {_row(frame, i)} is not a class index in [0, {num_classes - 1}]"
        )
    return values.astype(np.int64)


def _probs(inputs: pd.DataFrame, num_classes: int) -> np.ndarray:
    """(N, C) float64 from the list column; names the first bad row."""
    values = inputs["probs"].tolist()
    if not values:
        return np.zeros((0, num_classes), dtype=np.float64)
    rows = []
    for i, value in enumerate(values):
        try:
            row = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"pseudo_labels.probs: not a list of numbers at {_row(inputs, i)}") from None
        if row.shape != (num_classes,):
            raise DataError(
                f"pseudo_labels.probs: {_row(inputs, i)} has shape {row.shape}, expected "
                f"({num_classes},): one probability per class"
            )
        rows.append(row)
    probs = np.stack(rows)
    bad = ~np.isfinite(probs).all(axis=1) | (probs < 0).any(axis=1) | ~(probs.sum(axis=1) > 0)
    if bad.any():
        raise DataError(
            f"pseudo_labels.probs: {_row(inputs, int(np.flatnonzero(bad)[0]))} is not a probability "
            "vector (finite, >= 0, positive sum)"
        )
    return probs


def _second_best(probs: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best class other than pred and its probability, (N,) each; ties go to the lower index."""
    masked = probs.copy()
    masked[np.arange(len(pred)), pred] = -np.inf
    second = masked.argmax(axis=1)
    return second.astype(np.int64), probs[np.arange(len(pred)), second]


def _previous(inputs: pd.DataFrame, previous: Any, num_classes: int) -> tuple[pd.Series, pd.Series]:
    """prev_pred (Int64) and prev_confidence (float) per row, null where there is none."""
    n = len(inputs)
    prev_pred = pd.Series(pd.array([pd.NA] * n, dtype="Int64"))
    prev_confidence = pd.Series(np.full(n, np.nan))
    if previous is None:
        return prev_pred, prev_confidence
    if not isinstance(previous, pd.DataFrame):
        raise DataError(f"context.previous: expected a pandas DataFrame or None, got {type(previous).__name__}")
    missing = [c for c in ("item_id", "pred", "confidence") if c not in previous.columns]
    if missing:
        raise DataError(f"context.previous: missing columns {missing}; has {list(previous.columns)}")
    frame = previous[["item_id", "pred", "confidence"]].reset_index(drop=True)
    if frame["item_id"].duplicated().any():
        raise DataError(f"context.previous.item_id: duplicate {frame['item_id'][frame['item_id'].duplicated()].iloc[0]!r}")
    values = _class_column(frame, "pred", num_classes, "context.previous")
    confidence = frame["confidence"]
    if not pd.api.types.is_numeric_dtype(confidence) or pd.api.types.is_bool_dtype(confidence):
        raise DataError(f"context.previous.confidence: expected numbers, got dtype {confidence.dtype}")
    position = pd.Series(np.arange(len(frame)), index=pd.Index(frame["item_id"]))
    found = inputs["item_id"].map(position)
    has = found.notna().to_numpy(dtype=bool)
    rows = found[has].to_numpy(dtype=np.int64)
    prev_pred[has] = values[rows]
    prev_confidence[has] = confidence.to_numpy(dtype=np.float64)[rows]
    return prev_pred, prev_confidence


def _without_truth(previous: pd.DataFrame | None) -> pd.DataFrame | None:
    if isinstance(previous, pd.DataFrame) and TRUTH_COLUMN in previous.columns:
        return previous.drop(columns=[TRUTH_COLUMN])
    return previous


def _check_rule_columns(config: RefineConfig, inputs: pd.DataFrame) -> None:
    available = set(inputs.columns) | set(DERIVED_COLUMNS) | {"label", "weight"}
    for rule in config.rules:
        for column in sorted({c.column for c in column_conditions(rule.when)} - available):
            raise DataError(
                f"{rule.where}: column {column!r} is not in the pseudo-labels table; "
                f"columns: {list(inputs.columns)}"
            )
    if config.group_by is not None and config.group_by not in inputs.columns:
        raise DataError(
            f"refine.group_by: column {config.group_by!r} is not in the pseudo-labels table; "
            f"columns: {list(inputs.columns)}"
        )


def _check_rule_types(config: RefineConfig, base: pd.DataFrame) -> None:
    """Refuse comparisons that could never match (a number against a text column)."""
    schema = Schema(config.class_names, config.extra_columns)
    for rule in config.rules:
        for condition in column_conditions(rule.when):
            # Class, number and text columns had their values checked at parse time.
            if schema.column_kind(condition.column) != "any" or condition.value is None:
                continue
            values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
            column = base[condition.column]
            if not column.notna().any():
                continue  # nothing to compare (empty or all-null): nothing can mismatch
            for value in values:
                if not _comparable(column, value):
                    raise DataError(
                        f"{rule.where}.when: column {condition.column!r} has dtype {column.dtype}, "
                        f"which cannot be compared with {value!r}"
                    )


def _comparable(column: pd.Series, value: Any) -> bool:
    dtype = column.dtype
    if dtype == object:
        return True
    if isinstance(value, str):
        return pd.api.types.is_string_dtype(dtype)
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def _groups(config: RefineConfig, base: pd.DataFrame) -> tuple[np.ndarray | None, int]:
    if config.group_by is None or not any(uses_groups(r.when) for r in config.rules):
        return None, 0
    try:
        codes, uniques = pd.factorize(base[config.group_by], use_na_sentinel=True)
    except TypeError as exc:
        raise DataError(f"refine.group_by: column {config.group_by!r} cannot form groups: {exc}") from None
    return np.asarray(codes, dtype=np.int64), len(uniques)


def _apply_rule(
    rule: Rule, base: pd.DataFrame, state: _State, group_codes: np.ndarray | None, n_groups: int
) -> RuleStats:
    stats = RuleStats(rule.name, "rule", description=rule.description)

    def column(name: str) -> pd.Series:
        if name == "label":
            return pd.Series(pd.array(state.labels, dtype="Int64"))
        if name == "weight":
            return pd.Series(state.weight)
        return base[name]

    rows = RowView(column=column, labels=state.labels, live=state.kept, group_codes=group_codes, n_groups=n_groups)
    try:
        matched = evaluate(rule.when, rows) & state.kept
    except (TypeError, ValueError) as exc:
        raise DataError(f"{rule.where}.when: cannot be evaluated on this table: {exc}") from None
    stats.matched = int(matched.sum())
    changed = np.zeros(len(matched), dtype=bool)
    if rule.drop:
        changed |= state.drop(matched, stats)
    if rule.relabel is not None:
        changed |= state.relabel(matched, np.full(len(matched), rule.relabel, dtype=np.int64), stats)
    if rule.threshold:
        for i in np.flatnonzero(matched).tolist():
            old = state.thresholds[i]
            new = _merge_threshold(old, rule.threshold)
            if new != old:
                state.thresholds[i] = new
                changed[i] = True
                stats.thresholds_set += 1
    if rule.weight is not None and rule.weight != 1.0:
        state.weight[matched] *= rule.weight
        stats.weighted = int(matched.sum())
        changed |= matched
    if rule.keep:
        newly = matched & ~state.exempt
        state.exempt |= matched
        stats.marked_keep = int(newly.sum())
        changed |= newly
    state.note(changed, stats)
    return stats


def _merge_threshold(
    old: dict[int | None, float] | None, spec: tuple[tuple[int | None, float], ...]
) -> dict[int | None, float]:
    # A scalar override replaces everything; a per-class one adds to what is there.
    if spec[0][0] is None:
        return {None: spec[0][1]}
    merged = dict(old or {})
    merged.update(spec)
    return merged


def _apply_plugin(
    rule: Rule, base: pd.DataFrame, state: _State, context: RefineContext, num_classes: int
) -> RuleStats:
    """Run a plug-in on a copy of the table; account for what it changed in label/weight/kept."""
    stats = RuleStats(rule.name, "plugin", description=rule.description)
    view = base.copy(deep=True)
    view["label"] = pd.array(state.labels, dtype="Int64")
    view["weight"] = state.weight.copy()
    view["kept"] = state.kept.copy()
    try:
        result = rule.plugin_fn(view, context)
    except SelftrainError:
        raise
    except Exception as exc:
        exc.add_note(f"raised by the plug-in of {rule.where}: {rule.plugin}")
        raise
    where = f"{rule.where}: plug-in {rule.plugin!r}"
    if not isinstance(result, pd.DataFrame):
        raise DataError(f"{where} returned {type(result).__name__}, expected a DataFrame")
    if len(result) != len(base) or not result.index.equals(base.index) or not _same(result, base, "item_id"):
        raise DataError(f"{where} added, removed or reordered rows; plug-ins return the same rows in order")
    for name in (*PLUGIN_WRITABLE, *base.columns):
        if name not in result.columns:
            raise DataError(f"{where} returned no column {name!r}")
    for name in base.columns:
        if not _same(result, base, name):
            raise DataError(
                f"{where} changed column {name!r}; plug-ins may change only {list(PLUGIN_WRITABLE)}"
            )
    kept = result["kept"]
    if not pd.api.types.is_bool_dtype(kept) or kept.isna().any():
        raise DataError(f"{where}: column 'kept' must be booleans without nulls, got dtype {kept.dtype}")
    new_kept = kept.to_numpy(dtype=bool)
    revived = new_kept & ~state.kept
    if revived.any():
        raise DataError(f"{where} set kept=True on dropped {_row(base, int(np.flatnonzero(revived)[0]))}; a drop is final")
    survives = new_kept | state.exempt
    try:
        labels = pd.array(result["label"], dtype="Int64")
    except (TypeError, ValueError):
        raise DataError(f"{where}: column 'label' must hold class indices, got dtype {result['label'].dtype}") from None
    live = state.kept & survives
    bad_label = live & (pd.isna(labels) | ~np.isin(labels.to_numpy(dtype=np.float64, na_value=-1), np.arange(num_classes)))
    if bad_label.any():
        i = int(np.flatnonzero(bad_label)[0])
        raise DataError(f"{where}: label {labels[i]!r} at kept {_row(base, i)} is not a class index in [0, {num_classes - 1}]")
    try:
        weight = result["weight"].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: column 'weight' must hold numbers, got dtype {result['weight'].dtype}") from None
    bad_weight = live & ~(np.isfinite(weight) & (weight >= 0))
    if bad_weight.any():
        raise DataError(f"{where}: weight at {_row(base, int(np.flatnonzero(bad_weight)[0]))} must be finite and >= 0")

    changed = state.drop(state.kept & ~new_kept, stats)
    new_labels = labels.to_numpy(dtype=np.int64, na_value=-1)
    changed |= state.relabel(live, new_labels, stats)
    reweighted = live & (weight != state.weight)
    state.weight[reweighted] = weight[reweighted]
    stats.weighted = int(reweighted.sum())
    changed |= reweighted
    stats.matched = int(changed.sum())
    state.note(changed, stats)
    return stats


def _same(a: pd.DataFrame, b: pd.DataFrame, column: str) -> bool:
    try:
        return bool(a[column].reset_index(drop=True).equals(b[column].reset_index(drop=True)))
    except (TypeError, ValueError):
        return False


def _threshold(config: RefineConfig, confidence: np.ndarray, state: _State) -> RuleStats:
    overridden = any(t is not None for t in state.thresholds)
    stats = RuleStats(
        "threshold",
        "builtin",
        enabled=config.threshold is not None or bool(config.class_thresholds) or overridden,
    )
    limit = np.full(len(confidence), -np.inf if config.threshold is None else config.threshold)
    for class_index, value in config.class_thresholds:
        limit[state.labels == class_index] = value
    for i, override in enumerate(state.thresholds):
        if override:
            limit[i] = override.get(int(state.labels[i]), override.get(None, limit[i]))
    matched = state.kept & (confidence < limit)
    stats.matched = int(matched.sum())
    state.note(state.drop(matched, stats), stats)
    return stats


def _limit(
    name: str, bound: float | None, beyond: Callable[[float], np.ndarray], state: _State
) -> RuleStats:
    """Drop the live rows beyond `bound` (margin below it, entropy above it); None: off."""
    stats = RuleStats(name, "builtin", enabled=bound is not None)
    if bound is None:
        return stats
    matched = state.kept & beyond(bound)
    stats.matched = int(matched.sum())
    state.note(state.drop(matched, stats), stats)
    return stats


def _agreement(
    config: RefineConfig, has_previous: bool, pred: np.ndarray, prev_pred: pd.Series, state: _State
) -> RuleStats:
    stats = RuleStats("agreement", "builtin", enabled=config.agreement)
    if not config.agreement:
        return stats
    if not has_previous:
        stats.note = "no previous round; nothing compared"
        return stats
    known = prev_pred.notna().to_numpy(dtype=bool)
    previous = prev_pred.to_numpy(dtype=np.int64, na_value=-1)
    matched = state.kept & known & (previous != pred)
    stats.matched = int(matched.sum())
    stats.note = f"{int(known.sum())} rows had a previous prediction"
    state.note(state.drop(matched, stats), stats)
    return stats


def _balance(config: RefineConfig, confidence: np.ndarray, state: _State) -> RuleStats:
    stats = RuleStats("balance", "builtin", enabled=config.balance.enabled)
    state.copies[:] = state.kept.astype(np.int64)
    if not config.balance.enabled:
        return stats
    counts = np.bincount(state.labels[state.kept], minlength=config.num_classes)
    present = counts[counts > 0]
    if present.size == 0:
        stats.note = "no rows kept"
        return stats
    per_class = config.balance.per_class or int(math.ceil(np.median(present)))
    stats.per_class = per_class
    changed = np.zeros(len(state.kept), dtype=bool)
    for class_index in range(config.num_classes):
        rows = np.flatnonzero(state.kept & (state.labels == class_index))
        if rows.size == 0 or rows.size == per_class:
            continue
        # Exempt rows first, then most confident, then input order: deterministic.
        order = rows[np.lexsort((rows, -confidence[rows], ~state.exempt[rows]))]
        if rows.size > per_class:
            surplus = np.zeros(len(state.kept), dtype=bool)
            surplus[order[per_class:]] = True
            changed |= state.drop(surplus, stats)
        else:
            each, extra = divmod(per_class, rows.size)
            state.copies[rows] = each
            state.copies[order[:extra]] += 1
            stats.copies_added += per_class - rows.size
            duplicated = np.zeros(len(state.kept), dtype=bool)
            duplicated[rows[state.copies[rows] > 1]] = True
            stats.duplicated += int(duplicated.sum())
            changed |= duplicated
    state.copies[~state.kept] = 0
    stats.matched = int(changed.sum())
    state.note(changed, stats)
    return stats


def sharpen(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T) per row of (N, C) `probs`; T < 1 sharpens, T > 1 flattens."""
    with np.errstate(divide="ignore"):
        logits = np.log(probs) / temperature
    logits = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def _targets(config: RefineConfig, probs: np.ndarray, pred: np.ndarray, state: _State) -> list[list[float] | None]:
    """(N,) training targets, each a list of C floats; None for dropped rows."""
    n, c = probs.shape
    targets = sharpen(probs, config.temperature) if config.soft and n else np.zeros((n, c))
    # Hard targets everywhere, or where a rule moved the row away from the teacher's pick.
    one_hot = np.ones(n, dtype=bool) if not config.soft else state.labels != pred
    targets[one_hot] = np.eye(c)[state.labels[one_hot]]
    rows = targets.tolist()
    return [row if keep else None for row, keep in zip(rows, state.kept.tolist())]


def _objects(values: list, index: pd.Index) -> pd.Series:
    array = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        array[i] = v
    return pd.Series(array, index=index, dtype=object)


def _assemble(
    pseudo_labels: pd.DataFrame, base: pd.DataFrame, has_previous: bool, state: _State, targets: list
) -> pd.DataFrame:
    table = pseudo_labels.copy()
    index = table.index
    derived = ["second_pred", "second_confidence"] + (["prev_pred", "prev_confidence"] if has_previous else [])
    for name in derived:
        table[name] = base[name].set_axis(index)
    label = pd.array(state.labels, dtype="Int64")
    label[~state.kept] = pd.NA
    table["label"] = pd.Series(label, index=index)
    table["target"] = _objects(targets, index)
    table["weight"] = pd.Series(np.where(state.kept, state.weight, 0.0), index=index)
    table["kept"] = pd.Series(state.kept.copy(), index=index)
    table["copies"] = pd.Series(state.copies.copy(), index=index)
    table["rules"] = _objects([list(r) for r in state.rules], index)
    table["dropped_by"] = _objects(list(state.dropped_by), index)
    return table


__all__ = ["RefineContext", "RefineResult", "refine", "sharpen"]
