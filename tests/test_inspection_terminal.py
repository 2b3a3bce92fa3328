"""Inspection tables printed in the terminal (selftrain.inspection.terminal), on synthetic artifacts (see report_fixtures)."""

from __future__ import annotations

from rich.console import Console

from report_fixtures import tiny  # noqa: F401 (pytest fixtures)
from selftrain.inspection.tables import round_summary
from selftrain.inspection.terminal import render_summary


def test_render_summary_prints_titles_and_missing_tables(tiny):
    console = Console(record=True, width=200)
    render_summary(round_summary(tiny, 1), console)
    text = console.export_text()
    assert "Canary overall" in text and "dropped" in text and "0.7500" in text
    assert "Prediction flips vs the previous round: not available" in text
