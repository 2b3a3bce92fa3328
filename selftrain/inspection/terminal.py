"""Printing inspection tables in the terminal with rich, narrow by default, and as JSON for scripts."""

from __future__ import annotations

import json
from typing import Any, Mapping

import pandas as pd

from selftrain.inspection.cells import format_cell
from selftrain.inspection.label_set_tables import LABEL_SET_TABLES
from selftrain.inspection.tables import SUMMARY_TABLES

# The columns a table shows unless asked for every one (`selftrain inspect --wide`),
# chosen so that the table reads at 80 columns. A compared table (`c@j`, `c@k`) keeps
# the compared columns of these names. "precision" is the rules report's precision
# against the canary ground truth (null where the round has none); "val_precision" the
# same judged on the val split, a share of "val_judged" rows ("skipped": below
# refine.min_rule_precision, not applied).
NARROW_COLUMNS: dict[str, tuple[str, ...]] = {
    "rules": (
        "rule", "kind", "matched", "changed", "dropped", "relabelled",
        "precision", "val_precision", "val_judged", "skipped",
    ),
}


def render_summary(summary: Mapping[str, pd.DataFrame], console: Any = None, wide: bool = False) -> None:
    """Print each table of a summary (or of `compare_rounds`) as a rich table.

    Args:
        summary: table name -> frame; names in `SUMMARY_TABLES` get their titles.
        console: a ``rich.console.Console``; a new one on stdout when None.
        wide: every column of every table; otherwise `NARROW_COLUMNS` where a table has them.
    """
    from rich.console import Console

    console = console or Console()
    for name, frame in summary.items():
        title = {**SUMMARY_TABLES, **LABEL_SET_TABLES}.get(name, (name, ()))[0]
        shown = frame if wide else narrow(frame, name)
        hidden = frame.shape[1] - shown.shape[1]
        if hidden:
            title = f"{title} ({hidden} more column{'s' if hidden > 1 else ''} with --wide)"
        render_table(shown, title, console)


def narrow(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """`frame` with only its `NARROW_COLUMNS[name]` (compared ``c@j`` columns by ``c``), in frame order."""
    keep = NARROW_COLUMNS.get(name)
    if keep is None:
        return frame
    return frame[[c for c in frame.columns if str(c).split("@")[0] in keep]]


def render_table(frame: pd.DataFrame, title: str, console: Any) -> None:
    """Print one frame as a rich table; an empty frame prints as one 'not available' line.

    Text cells fold onto more lines rather than being cut, so a long rule or class
    name stays whole in a narrow terminal.
    """
    from rich.table import Table

    if frame.empty:
        console.print(f"[dim]{title}: not available[/dim]")
        return
    table = Table(title=title, title_justify="left")
    for column in frame.columns:
        values = frame[column]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        table.add_column(str(column), justify="right" if numeric else "left", overflow="fold")
    for row in frame.itertuples(index=False):
        table.add_row(*(format_cell(v) for v in row))
    console.print(table)


def tables_json(tables: Mapping[str, pd.DataFrame]) -> str:
    """Every column of every table as JSON: ``{name: [{column: value, ...}, ...]}``, nulls as null."""
    return json.dumps({name: json.loads(frame.to_json(orient="records")) for name, frame in tables.items()}, indent=2)
