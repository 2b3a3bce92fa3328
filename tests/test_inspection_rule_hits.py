"""The rule-hit table, from the rules report or the refined table (selftrain.inspection.rule_hits), on synthetic artifacts (see report_fixtures)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from report_fixtures import DROP_RULE, RELABEL_RULE, Options, build_project, project, tiny  # noqa: F401 (pytest fixtures)
from selftrain.inspection.history import item_history
from selftrain.inspection.tables import round_summary
from selftrain.report.pages import write_report


def test_rule_hits_counted_from_table_without_report(tiny):
    rules = round_summary(tiny, 1)["rules"].set_index("rule")
    assert set(rules["source"]) == {"table"}
    assert rules.loc["two-to-one", ["changed", "dropped", "relabelled"]].tolist() == [1, 0, 1]
    assert rules.loc["threshold", ["changed", "dropped", "relabelled"]].tolist() == [2, 2, 0]
    assert rules.loc["margin", ["changed", "dropped"]].tolist() == [1, 1]


def test_rule_hits_come_from_the_rules_report(project):
    report = json.loads(project.rules_report(2).read_text())
    rules = round_summary(project, 2)["rules"].set_index("rule")
    assert list(rules.index) == [RELABEL_RULE, DROP_RULE]
    assert set(rules["source"]) == {"rules_report"}
    for entry in report["rules"]:
        assert rules.loc[entry["name"], "matched"] == entry["matched"]
        assert rules.loc[entry["name"], "dropped"] == entry["dropped"]
    relabelled = report["rules"][0]["relabelled"]["7->1"]
    assert rules.loc[RELABEL_RULE, "relabelled"] == relabelled
    assert rules.loc[RELABEL_RULE, "relabelled_pairs"] == f"7->1: {relabelled}"


def test_rule_report_precision_is_flattened(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=1, items=20))
    report = json.loads(paths.rules_report(1).read_text())
    report["rules"][1]["precision"] = {
        "relabel": {"right": 0, "judged": 0, "precision": None},
        "drop": {"right": 3, "judged": 4, "precision": 0.75},
        "overall": {"right": 3, "judged": 4, "precision": 0.75},
    }
    paths.rules_report(1).write_text(json.dumps(report))
    rules = round_summary(paths, 1)["rules"].set_index("rule")
    assert rules.loc[DROP_RULE, "precision"] == pytest.approx(0.75)
    assert rules.loc[DROP_RULE, "drop_precision"] == pytest.approx(0.75)
    assert math.isnan(rules.loc[DROP_RULE, "relabel_precision"])


def test_val_precision_sits_beside_the_canary_precision(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=1, items=20))
    report = json.loads(paths.rules_report(1).read_text())
    judged = {"right": 3, "judged": 4, "precision": 0.75}
    report["rules"][1]["precision"] = {"relabel": {"right": 0, "judged": 0, "precision": None}, "drop": judged, "overall": judged}
    on_val = {"right": 1, "judged": 4, "precision": 0.25}
    report["rules"][1]["val_precision"] = {"relabel": {"right": 0, "judged": 0, "precision": None}, "drop": on_val, "overall": on_val}
    report["rules"][1].update(skipped=True, enabled=False)
    report["rules"][0].update(val_precision=None, skipped=False)
    paths.rules_report(1).write_text(json.dumps(report))
    rules = round_summary(paths, 1)["rules"]
    columns = list(rules.columns)
    assert columns[columns.index("precision") :][:4] == ["precision", "val_precision", "val_judged", "skipped"]
    rules = rules.set_index("rule")
    assert rules.loc[DROP_RULE, ["val_precision", "val_drop_precision", "val_judged"]].tolist() == [0.25, 0.25, 4]
    assert bool(rules.loc[DROP_RULE, "skipped"]) and not bool(rules.loc[RELABEL_RULE, "skipped"])
    assert math.isnan(rules.loc[RELABEL_RULE, "val_precision"])
    # The HTML report's rule table shows them, and says what they are.
    page = (write_report(paths, paths.root / "reports", range(2)).parent / "round1.html").read_text()
    table = page[page.index('id="rule-table"') :]
    table = table[: table.index("</table>")]
    assert "<th>val_precision</th><th>val_judged</th><th>skipped</th>" in table
    assert "refine.min_rule_precision" in table and ">0.2500<" in table


def test_without_report_and_rule_columns(tmp_path):
    options = Options(rounds=2, items=20, rules_report=False, refined_without=("rules", "dropped_by"))
    paths = build_project(tmp_path / "p", options)
    summary = round_summary(paths, 2)
    assert summary["rules"].empty and summary["canary_drops"].empty
    assert summary["class_counts"]["kept"].sum() == int(pd.read_parquet(paths.refined(2))["kept"].sum())
    assert not summary["canary_overall"].empty
    history = item_history(paths, "item-001")
    assert history["rules"].isna().all() and history["dropped_by"].isna().all()
