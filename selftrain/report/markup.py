"""HTML building blocks of the report pages (page, nav, section, table, embedded figure) and their style."""

from __future__ import annotations

import base64
import html
import io
from typing import Any, Sequence

import pandas as pd
from matplotlib.figure import Figure

from selftrain.inspection.cells import format_cell

INDEX_PAGE = "index.html"
FIGURE_DPI = 80

CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
nav a { margin-right: 0.8em; }
section { margin: 1.5em 0; border-top: 1px solid #ccc; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
table.data th, table.data td { border: 1px solid #ddd; padding: 2px 6px; }
table.data td.num { text-align: right; }
table.data caption { text-align: left; font-weight: bold; padding: 4px 0; }
.grid { display: flex; flex-wrap: wrap; gap: 6px; }
figure.tile { margin: 0; width: 96px; font-size: 0.7em; border: 2px solid #8c8; padding: 2px; }
figure.tile.wrong { border-color: #d55; }
figure.tile.unjudged { border-color: #bbb; }
figure.tile img { image-rendering: pixelated; display: block; margin: 0 auto; }
.noimg { width: 64px; height: 64px; background: #eee; margin: 0 auto; }
p.unavailable, p.empty { color: #777; font-style: italic; }
"""


def round_page_name(k: int) -> str:
    """File name of round k's page inside the report directory."""
    return f"round{k}.html"


def escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def page_html(title: str, nav: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{nav}\n<h1>{escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def nav_html(rounds: Sequence[int], current: int | None) -> str:
    links = ['<a href="index.html">Index</a>']
    for k in rounds:
        here = ' aria-current="page"' if k == current else ""
        links.append(f'<a href="{round_page_name(k)}"{here}>Round {k}</a>')
    return f'<nav id="nav">{"".join(links)}</nav>'


def section_html(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}" class="report-section">\n<h2>{escape(title)}</h2>\n{body}\n</section>\n'


def note_html(text: str) -> str:
    return f'<p class="unavailable">{escape(text)}</p>'


def table_html(frame: pd.DataFrame, caption: str | None, table_id: str) -> str:
    """A pandas frame as an HTML table; numbers right-aligned, floats to 4 places, nulls as '-'."""
    numeric = [_is_number_column(frame[c]) for c in frame.columns]
    head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{escape(format_cell(v))}</td>' if is_num else f"<td>{escape(format_cell(v))}</td>"
            for v, is_num in zip(row, numeric)
        )
        + "</tr>"
        for row in frame.itertuples(index=False)
    )
    caption_html = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (
        f'<table class="data" id="{table_id}">{caption_html}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _is_number_column(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def figure_html(figure: Figure, alt: str, figure_id: str) -> str:
    """A matplotlib figure as an embedded PNG."""
    buffer = io.BytesIO()
    # No Software/date metadata: the same data gives the same bytes.
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight", metadata={"Software": None})
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure class="plot" id="{figure_id}"><img src="{uri}" alt="{escape(alt)}"></figure>'
