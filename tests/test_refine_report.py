"""The rules report: counts, precision against ground truth, and its terminal rendering."""

from __future__ import annotations

import json

import pytest

from refine_fixtures import BED, DRESSER, ISLAND, ISLAND_TO_DRESSER, LAMP, full_run, make_table, rich_table, run
from selftrain.refine import format_report


def test_report_counts_and_precision():
    # rows: 0 island@bed-room (truth dresser), 1 bed (truth bed), 2 island alone (truth lamp),
    #       3 lamp conf .5 (truth lamp), 4 lamp conf .95 (truth bed)
    table = make_table(
        [ISLAND, BED, ISLAND, LAMP, LAMP],
        [0.9, 0.9, 0.9, 0.5, 0.95],
        group_id=["g1", "g1", "g2", "g3", "g3"],
        true_label=[DRESSER, BED, LAMP, LAMP, BED],
    )
    rules = [
        ISLAND_TO_DRESSER,
        {"name": "lone-island", "when": {"all": [{"column": "pred", "op": "==", "value": "island"}, {"column": "label", "op": "==", "value": "island"}]}, "relabel": "bed"},
    ]
    report = run(table, rules, threshold=0.7, group_by="group_id").report
    json.dumps(report, allow_nan=False)
    by_name = {r["name"]: r for r in report["rules"]}
    assert by_name["island-to-dresser"]["relabelled"] == {"island->dresser": 1}
    assert by_name["island-to-dresser"]["precision"]["relabel"] == {"right": 1, "judged": 1, "precision": 1.0}
    assert by_name["lone-island"]["precision"]["relabel"] == {"right": 0, "judged": 1, "precision": 0.0}
    assert by_name["threshold"]["dropped"] == 1
    # the threshold dropped row 3, a correct lamp: a wrong drop
    assert by_name["threshold"]["precision"]["drop"] == {"right": 0, "judged": 1, "precision": 0.0}
    assert by_name["margin"]["precision"]["overall"]["precision"] is None
    assert report["classes"]["before"] == {"bed": 1, "island": 2, "dresser": 0, "lamp": 2}
    assert report["classes"]["after"] == {"bed": 2, "island": 0, "dresser": 1, "lamp": 1}
    assert report["accuracy"]["before"] == pytest.approx(2 / 5)
    assert report["accuracy"]["after"] == pytest.approx(2 / 4)
    assert (report["rows"], report["kept"], report["dropped"]) == (5, 4, 1)


def test_report_has_no_truth_sections_without_truth():
    report = full_run(rich_table()).report
    assert "accuracy" not in report
    assert all("precision" not in r for r in report["rules"])
    assert report["order"] == ["island-to-dresser", "trust", "very-low", "wide-lamps", "ood", "threshold", "margin", "entropy", "agreement", "balance"]
    json.dumps(report, allow_nan=False)


def test_format_report_renders_rules_and_classes():
    table = make_table([ISLAND, BED, LAMP], [0.9, 0.9, 0.5], group_id=["g", "g", "h"], true_label=[DRESSER, BED, LAMP])
    text = format_report(run(table, [ISLAND_TO_DRESSER], threshold=0.7, group_by="group_id").report)
    lines = text.splitlines()
    assert lines[0].startswith("refine, generation 1: 3 rows, 2 kept, 1 dropped")
    rule_line = next(line for line in lines if line.startswith("island-to-dresser"))
    assert "island->dresser: 1" in rule_line and "1.00 (1/1)" in rule_line
    assert any(line.startswith("threshold") and "0.00 (0/1)" in line for line in lines)
    assert any(line.startswith("margin (off)") for line in lines)
    assert any(line.split() == ["dresser", "0", "1", "1"] for line in lines)
    assert "66.7% before -> 100.0% after" in text
