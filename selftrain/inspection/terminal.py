"""Printing inspection tables in the terminal with rich."""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from selftrain.inspection.cells import format_cell
from selftrain.inspection.tables import SUMMARY_TABLES


def render_summary(summary: Mapping[str, pd.DataFrame], console: Any = None) -> None:
    """Print each table of a summary (or of `compare_rounds`) as a rich table.

    Args:
        summary: table name -> frame; names in `SUMMARY_TABLES` get their titles.
        console: a ``rich.console.Console``; a new one on stdout when None.
    """
    from rich.console import Console

    console = console or Console()
    for name, frame in summary.items():
        title = SUMMARY_TABLES.get(name, (name, ()))[0]
        render_table(frame, title, console)


def render_table(frame: pd.DataFrame, title: str, console: Any) -> None:
    """Print one frame as a rich table; an empty frame prints as one 'not available' line."""
    from rich.table import Table

    if frame.empty:
        console.print(f"[dim]{title}: not available[/dim]")
        return
    table = Table(title=title, title_justify="left")
    for column in frame.columns:
        values = frame[column]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        table.add_column(str(column), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(format_cell(v) for v in row))
    console.print(table)
