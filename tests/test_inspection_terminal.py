"""Inspection tables printed in the terminal (selftrain.inspection.terminal), on synthetic artifacts (see report_fixtures)."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from report_fixtures import Options, build_project, project, tiny  # noqa: F401 (pytest fixtures)
from selftrain.inspection.tables import compare_rounds, round_summary
from selftrain.inspection.terminal import narrow, render_summary, tables_json


def test_render_summary_prints_titles_and_missing_tables(tiny):
    console = Console(record=True, width=200)
    render_summary(round_summary(tiny, 1), console)
    text = console.export_text()
    assert "Canary overall" in text and "dropped" in text and "0.7500" in text
    assert "Prediction flips vs the previous round: not available" in text


def _with_canary_precision(paths, k: int) -> dict:
    """Round k's rules report with a canary precision per rule, as refine writes it when truth is known."""
    report = json.loads(paths.rules_report(k).read_text())
    for entry, precision in zip(report["rules"], (0.25, 0.75)):
        entry["precision"] = {"overall": {"right": 1, "judged": 4, "precision": precision}}
    paths.rules_report(k).write_text(json.dumps(report))
    return report


def test_rule_table_reads_at_80_columns(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=1, items=20))
    _with_canary_precision(paths, 1)
    rules = round_summary(paths, 1)["rules"]
    console = Console(record=True, width=80)
    render_summary({"rules": rules}, console)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "rule" in line and "kind" in line)
    words = header.replace("┃", " ").split()
    assert words == ["rule", "kind", "matched", "changed", "dropped", "relabelled", "precision"]
    body = [line.split("│")[1:-1] for line in lines if line.startswith("│")]
    # A long rule name folds onto the next line instead of being cut.
    assert "…" not in console.export_text()
    assert "".join(cells[0].strip() for cells in body) == "".join(rules["rule"])
    starts = [[cell.strip() for cell in cells[1:]] for cells in body if cells[1].strip()]
    for (_, rule), shown in zip(rules.iterrows(), starts, strict=True):
        counts = [str(rule[c]) for c in ("matched", "changed", "dropped", "relabelled")]
        assert shown == [rule["kind"], *counts, f"{rule['precision']:.4f}"]
    assert "more columns with --wide" in lines[0]


def test_wide_shows_every_column(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=1, items=20))
    _with_canary_precision(paths, 1)
    rules = round_summary(paths, 1)["rules"]
    console = Console(record=True, width=400)
    render_summary({"rules": rules}, console, wide=True)
    header = next(line for line in console.export_text().splitlines() if "rule" in line and "kind" in line)
    assert header.replace("┃", " ").split() == list(rules.columns)


def test_compared_rule_tables_keep_the_narrow_columns_of_both_rounds(project):
    compared = compare_rounds(project, 1, 2)["rules"]
    shown = narrow(compared, "rules")
    assert list(shown.columns) == [
        "rule", "kind@1", "kind@2", "matched@1", "matched@2", "changed@1", "changed@2",
        "dropped@1", "dropped@2", "relabelled@1", "relabelled@2",
    ]
    assert "source@1" in compared.columns  # hidden, not lost


def test_json_holds_every_column_for_scripts(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=2, items=20))
    report = _with_canary_precision(paths, 2)
    summary = round_summary(paths, 2)
    parsed = json.loads(tables_json(summary))
    assert list(parsed) == list(summary)
    rules = parsed["rules"]
    assert [r["rule"] for r in rules] == [e["name"] for e in report["rules"]]
    assert [r["precision"] for r in rules] == [0.25, 0.75]
    assert [r["matched"] for r in rules] == [e["matched"] for e in report["rules"]]
    assert set(rules[0]) == set(summary["rules"].columns)
    assert parsed["flips"][0]["flipped"] == int(summary["flips"]["flipped"].iloc[0])
    assert parsed["canary_overall"][0]["accuracy"] == pytest.approx(summary["canary_overall"]["accuracy"].iloc[0])
