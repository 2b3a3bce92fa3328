"""The rule-hit table of a round: from its rules report, else counted from the refined table."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from selftrain.inspection.rounds import RoundData
from selftrain.inspection.views import pseudo_labels_of, rules_lists


RULE_HIT_COLUMNS = ("rule", "source", "kind", "matched", "changed", "dropped", "relabelled")
# The canary precision (pool truth) and the val precision side by side, after the counts.
PRECISION_COLUMNS = ("precision", "val_precision", "val_judged", "skipped")


def rule_hit_table(data: RoundData) -> pd.DataFrame:
    """One row per rule: from ``rules_report.json`` when it has per-rule entries, else
    counted from the refined table's ``rules``/``dropped_by`` columns.

    Report entries are flattened: ``relabelled`` ``{"a->b": n}`` becomes a total plus
    a ``relabelled_pairs`` text, ``precision.{overall,drop,relabel}.precision`` become
    ``precision``, ``drop_precision``, ``relabel_precision``, and the same of
    ``val_precision`` (judged on the val split) become ``val_precision``,
    ``val_drop_precision``, ``val_relabel_precision``, with ``val_judged``: the val rows
    the rule relabelled or dropped, which its val precision is a share of.
    """
    entries = _report_rule_entries(data.rules_report)
    if entries:
        rows = [{"rule": name, "source": "rules_report", **_flatten_rule_entry(e)} for name, e in entries]
        frame = pd.DataFrame(rows)
        leading = [c for c in (*RULE_HIT_COLUMNS, *PRECISION_COLUMNS) if c in frame.columns]
        return frame[leading + [c for c in frame.columns if c not in leading]]
    return _rule_hits_from_table(data.table)


def _report_rule_entries(report: dict | None) -> list[tuple[str, dict]]:
    """(name, entry) pairs from the report's ``rules`` list (or {name: entry} mapping)."""
    rules = (report or {}).get("rules")
    if isinstance(rules, Mapping):
        return [(str(name), entry) for name, entry in rules.items() if isinstance(entry, Mapping)]
    if isinstance(rules, list):
        named = []
        for i, entry in enumerate(rules):
            if isinstance(entry, Mapping):
                named.append((str(entry.get("name", entry.get("rule", f"rule {i}"))), entry))
        return named
    return []


def _flatten_rule_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in entry.items():
        if key in ("name", "rule"):
            continue
        if key == "relabelled" and isinstance(value, Mapping):
            flat["relabelled"] = int(sum(int(n) for n in value.values()))
            flat["relabelled_pairs"] = ", ".join(f"{pair}: {n}" for pair, n in value.items())
        elif key in ("precision", "val_precision") and isinstance(value, Mapping):
            prefix = "val_" if key == "val_precision" else ""
            for part, judged in value.items():
                column = f"{prefix}precision" if part == "overall" else f"{prefix}{part}_precision"
                flat[column] = judged.get("precision") if isinstance(judged, Mapping) else judged
            if prefix and isinstance(value.get("overall"), Mapping):
                flat["val_judged"] = value["overall"].get("judged")
        elif isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in value.items() if not isinstance(v, (Mapping, list))})
        elif isinstance(value, list):
            flat[key] = ", ".join(str(v) for v in value)
        else:
            flat[key] = value
    # JSON null precision (nothing judged) reads as NaN, like the table-derived numbers.
    for column in [c for c in flat if c.endswith("precision")]:
        flat[column] = np.nan if flat[column] is None else flat[column]
    return flat


def _rule_hits_from_table(table: pd.DataFrame) -> pd.DataFrame:
    """Rule hits counted from the table: rows touched, dropped, relabelled away from pred."""
    rules = rules_lists(table)
    dropped_by = table["dropped_by"] if "dropped_by" in table.columns else None
    if rules is None and dropped_by is None:
        return pd.DataFrame(columns=["rule", "source", "changed", "dropped", "relabelled"])
    rules = rules if rules is not None else [[] for _ in range(len(table))]
    drop_names = [] if dropped_by is None else [d for d in dropped_by.dropna().astype(str)]
    names = list(dict.fromkeys([r for row in rules for r in row] + drop_names))
    relabelled = (pseudo_labels_of(table) != table["pred"].astype("Int64")).fillna(False).to_numpy(bool)
    rows = []
    for name in names:
        touched = np.array([name in row for row in rules], dtype=bool)
        dropped = int(sum(d == name for d in drop_names))
        rows.append([name, "table", int(touched.sum()), dropped, int((touched & relabelled).sum())])
    return pd.DataFrame(rows, columns=["rule", "source", "changed", "dropped", "relabelled"])
