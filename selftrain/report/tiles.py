"""Grids of the images behind a round's pseudo-labels: which rows to show, captioned tiles, encoded images."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from PIL import Image

from selftrain.data import TRUTH_COLUMN
from selftrain.inspection.rounds import RoundData
from selftrain.inspection.views import kept_mask, pseudo_labels_of, rules_lists
from selftrain.report.markup import escape, note_html

# Most tiles in one grid: keeps a round page to a few hundred kilobytes.
TILE_CAP = 24
# Tiles are upscaled (nearest neighbour, so pixels stay crisp) to about this many pixels a side.
TILE_PIXELS = 64
# Grid title for dropped rows whose table does not say which rule dropped them.
UNKNOWN_RULE = "(rule unknown)"


def tile_view(data: RoundData) -> pd.DataFrame:
    """What a tile shows, one row per table row: item_id, path, pred, label, confidence,
    kept, rules (list), dropped_by, truth (nulls where the table lacks a column)."""
    table = data.table
    n = len(table)
    kept = kept_mask(table)
    rules = rules_lists(table)

    def column(name: str, **astype: Any) -> Any:
        if name not in table.columns:
            return [None] * n
        return table[name].astype(**astype).to_numpy() if astype else table[name].to_numpy()

    return pd.DataFrame(
        {
            "item_id": table["item_id"].astype(str).to_numpy(),
            "path": column("path"),
            "pred": table["pred"].astype("Int64").to_numpy(),
            "label": pseudo_labels_of(table).to_numpy(),
            "confidence": pd.to_numeric(pd.Series(column("confidence")), errors="coerce").to_numpy(float),
            "kept": kept if kept is not None else np.ones(n, dtype=bool),
            "rules": rules if rules is not None else [[] for _ in range(n)],
            "dropped_by": column("dropped_by"),
            "truth": column(TRUTH_COLUMN, dtype="Int64"),
        }
    )


@dataclass(frozen=True, eq=False)
class Tiles:
    """The image grids of one round page, over its `tile_view`."""

    view: pd.DataFrame
    data: RoundData
    images: ImageEncoder

    def kept_per_class(self) -> str:
        """Per class, up to TILE_CAP kept rows spread over the class's confidence range."""
        view = self.view
        parts = [] if self.data.refined else [note_html("no refined table: showing the teacher's predictions")]
        for index, name in enumerate(self.data.class_names):
            rows = view[view["kept"] & (view["label"] == index).fillna(False).to_numpy(bool)]
            rows = rows.sort_values("confidence", ascending=False, kind="stable")
            chosen = rows.iloc[_spread(len(rows), TILE_CAP)]
            shown = f", showing {len(chosen)} across the confidence range" if len(rows) > len(chosen) else ""
            title = f"{name}: {len(rows)} kept{shown}"
            parts.append(self.grid(f"kept-class-{index}", "class-grid", title, chosen))
        return "".join(parts)

    def low_confidence(self) -> str:
        """The TILE_CAP kept rows of lowest confidence, over all classes."""
        if self.view["confidence"].isna().all():
            return note_html("no confidence column in this round's table")
        rows = self.view[self.view["kept"]].sort_values("confidence", kind="stable").head(TILE_CAP)
        return self.grid("low-confidence-grid", "rank-grid", f"{len(rows)} lowest-confidence kept rows", rows)

    def dropped_per_rule(self) -> str:
        """Per dropping rule, its most confident drops (the ones worth a second look)."""
        if not self.data.refined:
            return note_html("no refined table: nothing was dropped yet")
        dropped = self.view[~self.view["kept"]]
        if dropped.empty:
            return note_html("no row was dropped")
        note = ""
        if "dropped_by" not in self.data.table.columns:
            note = note_html("no dropped_by column: every dropped row in one grid")
        by = dropped["dropped_by"].map(lambda v: UNKNOWN_RULE if v is None or pd.isna(v) else str(v))
        groups = list(dropped.groupby(by, sort=False))
        parts = [note]
        for slug, (rule, rows) in zip(_slugs(rule for rule, _ in groups), groups):
            rows = rows.sort_values("confidence", ascending=False, kind="stable")
            shown = f", showing the {TILE_CAP} most confident" if len(rows) > TILE_CAP else ""
            title = f"{rule}: dropped {len(rows)}{shown}"
            parts.append(self.grid(f"dropped-by-{slug}", "rule-grid", title, rows.head(TILE_CAP)))
        return "".join(parts)

    def relabelled_per_rule(self) -> str:
        """Per rule, rows it touched whose final label differs from the teacher's pred."""
        if "rules" not in self.data.table.columns or "label" not in self.data.table.columns:
            return note_html("no rules/label columns: relabels cannot be attributed to rules")
        view = self.view
        relabelled = view[(view["label"] != view["pred"]).fillna(False).to_numpy(bool)]
        names = list(dict.fromkeys(r for rules in relabelled["rules"] for r in rules))
        if not names:
            return note_html("no rule relabelled a row")
        parts = []
        for slug, rule in zip(_slugs(names), names):
            rows = relabelled[[rule in rules for rules in relabelled["rules"]]]
            shown = f", showing {TILE_CAP}" if len(rows) > TILE_CAP else ""
            title = f"{rule}: touched {len(rows)} relabelled rows{shown}"
            parts.append(self.grid(f"relabelled-by-{slug}", "rule-grid", title, rows.head(TILE_CAP)))
        return "".join(parts)

    def grid(self, grid_id: str, css_class: str, title: str, rows: pd.DataFrame) -> str:
        """A titled block of tiles; `rows` is already capped."""
        names = self.data.class_names
        tiles = "".join(_tile(row, names, self.images) for row in rows.itertuples(index=False))
        content = f'<div class="grid">{tiles}</div>' if tiles else '<p class="empty">none</p>'
        return f'<div class="{css_class}" id="{grid_id}"><h3>{escape(title)}</h3>{content}</div>'


def _spread(n: int, cap: int) -> list[int]:
    """Up to `cap` positions spread evenly over 0..n-1 (all of them when n <= cap)."""
    if n <= cap:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, cap).round().astype(int).tolist()))


def _slugs(names: Iterable[str]) -> list[str]:
    """HTML-id-safe, unique slugs of rule names (``Seven to 1`` -> ``seven-to-1``)."""
    slugs: list[str] = []
    for name in names:
        slug = re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-") or "rule"
        base, n = slug, 2
        while slug in slugs:
            slug, n = f"{base}-{n}", n + 1
        slugs.append(slug)
    return slugs


def _tile(row: Any, names: tuple[str, ...], images: ImageEncoder) -> str:
    """One image with its caption: item, confidence, teacher -> final label, rules, truth."""
    pred, label, truth = _name(row.pred, names), _name(row.label, names), _name(row.truth, names)
    lines = [row.item_id]
    if not pd.isna(row.confidence):
        lines.append(f"conf {row.confidence:.2f}")
    lines.append(f"{pred} → {label}" if pred != label else f"label {label}")
    lines.append(", ".join(row.rules) if row.rules else "no rule")
    if row.dropped_by is not None and not pd.isna(row.dropped_by):
        lines.append(f"dropped by {row.dropped_by}")
    if truth != "-":
        lines.append(f"truth {truth}")
    state = "unjudged" if truth == "-" else ("wrong" if truth != label else "right")
    uri = images.data_uri(row.path) if isinstance(row.path, str) else None
    size = images.size_of(row.path) if uri else None
    picture = (
        f'<img src="{uri}" alt="{escape(row.item_id)}" width="{size[0]}" height="{size[1]}">'
        if uri
        else '<div class="noimg" title="image not found"></div>'
    )
    caption = "<br>".join(escape(line) for line in lines)
    return f'<figure class="tile {state}">{picture}<figcaption>{caption}</figcaption></figure>'


def _name(index: Any, names: tuple[str, ...]) -> str:
    if index is None or pd.isna(index):
        return "-"
    index = int(index)
    return names[index] if 0 <= index < len(names) else str(index)


class ImageEncoder:
    """Manifest-relative image paths -> upscaled PNG data URIs, each file encoded once per report."""

    def __init__(self, root: Path, pixels: int = TILE_PIXELS) -> None:
        self.root = Path(root)
        self.pixels = pixels
        self._uris: dict[str, str | None] = {}
        self._sizes: dict[str, tuple[int, int]] = {}

    def data_uri(self, rel_path: str) -> str | None:
        """A ``data:image/png;base64,...`` URI, or None when the image cannot be read."""
        if rel_path not in self._uris:
            self._uris[rel_path] = self._encode(rel_path)
        return self._uris[rel_path]

    def size_of(self, rel_path: str) -> tuple[int, int]:
        """(width, height) of the encoded image (after `data_uri`)."""
        return self._sizes.get(rel_path, (self.pixels, self.pixels))

    def _encode(self, rel_path: str) -> str | None:
        try:
            with Image.open(self.root / rel_path) as image:
                image.load()
                # Integer factor with NEAREST: an 8x8 digit becomes 64x64 crisp blocks.
                scale = max(1, self.pixels // max(image.size))
                big = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
                buffer = io.BytesIO()
                big.save(buffer, format="PNG")
        except (OSError, ValueError):
            return None
        self._sizes[rel_path] = big.size
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
