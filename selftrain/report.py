"""The HTML report with pictures, and the DVC plot data, built from the round artifacts.

`write_report` writes ``index.html`` (per-generation accuracy, links to rounds)
and one ``round{k}.html`` per round: figures, tables, and grids of the images
behind the pseudo-labels. Pages are self-contained (every image is a base64
``data:`` URI; no script, no external URL) so they can be mailed, archived as
a DVC output, or opened offline. Every section has a stable ``id`` (see
`ROUND_SECTIONS`, `INDEX_SECTIONS`) and a section that has no data shows a
``p.unavailable`` note instead of disappearing.

`write_plot_data` writes CSVs for ``dvc plots``.
"""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from matplotlib.figure import Figure
from PIL import Image

from selftrain.atomic import atomic_dir, write_csv
from selftrain.data import TRUTH_COLUMN
from selftrain.inspection import (
    RoundData,
    available_rounds,
    format_cell,
    kept_mask,
    load_round,
    previous_predictions,
    pseudo_labels_of,
    rules_lists,
    summarize_round,
)
from selftrain.paths import ProjectPaths
from selftrain.summary import generation_table

INDEX_PAGE = "index.html"
# Most tiles in one grid: keeps a round page to a few hundred kilobytes.
TILE_CAP = 24
# Tiles are upscaled (nearest neighbour, so pixels stay crisp) to about this many pixels a side.
TILE_PIXELS = 64
CONFIDENCE_BINS = 20
FIGURE_DPI = 80
# A round's summary tables, as `selftrain.inspection.summarize_round` returns them.
Summary = dict[str, pd.DataFrame]
# Grid title for dropped rows whose table does not say which rule dropped them.
UNKNOWN_RULE = "(rule unknown)"

ROUND_SECTIONS = (
    "overview",
    "class-mix",
    "confidence",
    "rules",
    "flips",
    "confusion",
    "canary",
    "kept-images",
    "low-confidence",
    "rule-drops",
    "rule-relabels",
)
INDEX_SECTIONS = ("generations", "rounds", "confidence-overview")

GENERATION_PLOT_COLUMNS = ("generation", "test_accuracy", "macro_f1")
CONFIDENCE_PLOT_COLUMNS = ("round", "bin", "count")
ROUND_PLOT_COLUMNS = (
    "round", "rows", "kept", "teacher_accuracy", "kept_accuracy", "dropped_wrong_share", "flipped",
)

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


# ---------------------------------------------------------------------------
# Entry points


def write_report(paths: ProjectPaths, out_dir: str | Path, generations: Sequence[int]) -> Path:
    """Write the whole report on `generations` (0 = teacher) into `out_dir` (replaced as a
    whole) and return its index page.

    The pages are built in a temporary sibling directory that is swapped in for
    `out_dir` only once complete, so a reader never sees half a report. Anything
    else in `out_dir` is replaced too: give the report a directory of its own.
    """
    out_dir = Path(out_dir)
    rounds = _rounds(paths, generations)
    images = ImageEncoder(paths.prepared_dir)
    with atomic_dir(out_dir) as tmp:
        summaries = {}
        for k in rounds:
            data = load_round(paths, k)
            previous, source = previous_predictions(paths, data)
            summary = summarize_round(data, previous, source)
            summaries[k] = summary
            (tmp / round_page_name(k)).write_text(round_page(data, summary, rounds, images))
        (tmp / INDEX_PAGE).write_text(index_page(paths, generations, rounds, summaries))
    return out_dir / INDEX_PAGE


def write_plot_data(paths: ProjectPaths, out_dir: str | Path, generations: Sequence[int]) -> list[Path]:
    """Write CSVs for ``dvc plots`` on `generations` into `out_dir` and return their paths.

    - ``generations.csv``: generation, test_accuracy, macro_f1 (teacher = generation 0);
    - ``confidence.csv``: round, bin (left edge), count: confidence histograms;
    - ``rounds.csv``: per round rows, kept, teacher/kept accuracy, share of drops
      that were wrong, flips (accuracy columns empty without ground truth).
    """
    out_dir = Path(out_dir)
    rounds = _rounds(paths, generations)
    summaries = {k: _summary(paths, k) for k in rounds}
    written = []
    for name, frame in (
        ("generations.csv", generation_frame(paths, generations)),
        ("confidence.csv", confidence_histograms(paths, rounds)),
        ("rounds.csv", round_stats(summaries)),
    ):
        write_csv(frame, out_dir / name)
        written.append(out_dir / name)
    return written


def _summary(paths: ProjectPaths, k: int) -> dict[str, pd.DataFrame]:
    data = load_round(paths, k)
    previous, source = previous_predictions(paths, data)
    return summarize_round(data, previous, source)


# ---------------------------------------------------------------------------
# Data behind the index and the plots


def _rounds(paths: ProjectPaths, generations: Sequence[int]) -> list[int]:
    """The rounds among `generations` that have a table on disk; rounds outside
    `generations` (left by an older, longer run) are not part of this report."""
    return [k for k in available_rounds(paths) if k in set(generations)]


def generation_frame(paths: ProjectPaths, generations: Sequence[int]) -> pd.DataFrame:
    """generation, test_accuracy, macro_f1 for every one of `generations` with metrics."""
    table = generation_table(paths, max(generations, default=0))
    return table[list(GENERATION_PLOT_COLUMNS)].reset_index(drop=True)


def confidence_histograms(paths: ProjectPaths, rounds: Iterable[int]) -> pd.DataFrame:
    """Long table round, bin, count of teacher confidence over [0, 1] in CONFIDENCE_BINS bins.

    ``bin`` is the bin's left edge; a round without a confidence column has no rows.
    """
    edges = np.linspace(0.0, 1.0, CONFIDENCE_BINS + 1)
    rows = []
    for k in rounds:
        confidence = _round_confidence(paths, k)
        if confidence is None:
            continue
        counts, _ = np.histogram(confidence, bins=edges)
        rows += [(k, round(float(edge), 4), int(n)) for edge, n in zip(edges[:-1], counts)]
    return pd.DataFrame(rows, columns=list(CONFIDENCE_PLOT_COLUMNS))


def _round_confidence(paths: ProjectPaths, k: int) -> np.ndarray | None:
    path = paths.pseudo_labels(k) if paths.pseudo_labels(k).exists() else paths.refined(k)
    # ParquetDataset reads the schema of a file and of a directory of parts alike.
    if "confidence" not in pq.ParquetDataset(path).schema.names:
        return None
    values = pd.read_parquet(path, columns=["confidence"])["confidence"].to_numpy(dtype=np.float64)
    return values[~np.isnan(values)]


def round_stats(summaries: dict[int, Summary]) -> pd.DataFrame:
    """One row per round (ROUND_PLOT_COLUMNS) from its summary tables; unknown numbers are null."""
    rows = []
    for k, summary in summaries.items():
        overview = dict(zip(summary["overview"]["item"], summary["overview"]["value"]))
        canary = summary["canary_overall"].set_index("scope")
        flips = summary["flips"]
        rows.append(
            {
                "round": k,
                "rows": overview.get("rows"),
                "kept": overview.get("kept"),
                "teacher_accuracy": _lookup(canary, "teacher", "accuracy"),
                "kept_accuracy": _lookup(canary, "kept", "accuracy"),
                "dropped_wrong_share": _lookup(canary, "dropped", "wrong_share"),
                "flipped": int(flips["flipped"].iloc[0]) if len(flips) else None,
            }
        )
    frame = pd.DataFrame(rows, columns=list(ROUND_PLOT_COLUMNS))
    for column in ("round", "rows", "kept", "flipped"):
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    return frame


def _lookup(frame: pd.DataFrame, row: str, column: str) -> float | None:
    if row not in frame.index:
        return None
    value = frame.at[row, column]
    return None if pd.isna(value) else float(value)


# ---------------------------------------------------------------------------
# Pages


def index_page(
    paths: ProjectPaths, generations: Sequence[int], rounds: Sequence[int], summaries: dict[int, Summary]
) -> str:
    """index.html: the per-generation curve and table, links to rounds, confidence per round."""
    body = (
        _section("generations", "Accuracy per generation", _generations_body(paths, generations))
        + _section("rounds", "Rounds", _rounds_body(rounds, summaries))
        + _section("confidence-overview", "Confidence per round", _confidence_overview_body(paths, rounds))
    )
    return _page("Self-training report", _nav(rounds, None), body)


def _generations_body(paths: ProjectPaths, gens: Sequence[int]) -> str:
    generations = generation_table(paths, max(gens, default=0))
    if generations.empty:
        return _note("no metrics/gen{k}.json on disk yet")
    # Generation 0 has no pseudo-labels: its null turns the count column into floats.
    generations["pseudo_kept"] = pd.array(generations["pseudo_kept"].tolist(), dtype="Int64")
    figure = generation_figure(generations)
    curve = _figure(figure, "test accuracy and macro-F1 per generation", "generation-curve")
    caption = "Per-generation summary (generation 0 is the teacher)"
    return curve + _table(generations, caption, "generation-table")


def _rounds_body(rounds: Sequence[int], summaries: dict[int, Summary]) -> str:
    if not rounds:
        return _note("no rounds on disk yet (data/gen{k}/pseudo_labels/)")
    links = "".join(f'<li><a class="round-link" href="{round_page_name(k)}">Round {k}</a></li>' for k in rounds)
    table = _table(round_stats(summaries), "Pseudo-labels per round", "round-table")
    return f'<ul id="round-links">{links}</ul>{table}'


def _confidence_overview_body(paths: ProjectPaths, rounds: Sequence[int]) -> str:
    histograms = confidence_histograms(paths, rounds)
    if histograms.empty:
        return _note("no confidence column in any round")
    figure = confidence_overview_figure(histograms)
    return _figure(figure, "teacher confidence per round", "confidence-overview-figure")


def round_page(data: RoundData, summary: Summary, rounds: Sequence[int], images: ImageEncoder) -> str:
    """round{k}.html: every section of ROUND_SECTIONS for one round."""
    tiles = Tiles(tile_view(data), data, images)
    names = data.class_names
    sections = [
        _section("overview", "Overview", _table(summary["overview"], None, "overview-table")),
        _section("class-mix", "Class mix before and after refinement", _class_mix_body(summary)),
        _section("confidence", "Teacher confidence", _confidence_body(data, summary)),
        _section("rules", "Rule hits", _rules_body(summary)),
        _section("flips", "Flips since the previous round", _flips_body(summary, names)),
        _section("confusion", "Pseudo-labels vs truth", _confusion_body(summary, names)),
        _section("canary", "Canary audit (ground truth)", _canary_body(summary)),
        _section("kept-images", "Kept pseudo-labels per class", tiles.kept_per_class()),
        _section("low-confidence", "Lowest-confidence kept pseudo-labels", tiles.low_confidence()),
        _section("rule-drops", "Dropped, per rule", tiles.dropped_per_rule()),
        _section("rule-relabels", "Relabelled, per rule", tiles.relabelled_per_rule()),
    ]
    return _page(f"Round {data.round}", _nav(rounds, data.round), "".join(sections))


def _class_mix_body(summary: Summary) -> str:
    counts = summary["class_counts"]
    figure = class_mix_figure(counts)
    return _figure(figure, "class counts before and after refinement", "class-mix-figure") + _table(
        counts, None, "class-count-table"
    )


def _confidence_body(data: RoundData, summary: Summary) -> str:
    if "confidence" not in data.table.columns:
        return _note("no confidence column in this round's table")
    figure = confidence_figure(data.table["confidence"].to_numpy(dtype=np.float64), kept_mask(data.table))
    return _figure(figure, "histogram of teacher confidence", "confidence-figure") + _table(
        summary["quantiles"], "Score quantiles per predicted class", "quantile-table"
    )


def _rules_body(summary: Summary) -> str:
    rules = summary["rules"]
    if rules.empty:
        return _note("no rules_report.json and no rules/dropped_by columns")
    return _table(rules, None, "rule-table")


def _flips_body(summary: Summary, names: tuple[str, ...]) -> str:
    flips = summary["flips"]
    if flips.empty:
        return _note("no previous round to compare with")
    matrix = summary["flip_matrix"][list(names)].to_numpy(dtype=np.int64)
    figure = heatmap_figure(matrix, names, "current prediction", "previous prediction", "prediction flips")
    return (
        _figure(figure, "flip matrix between consecutive rounds", "flip-figure")
        + _table(flips, None, "flip-table")
        + _table(summary["flip_pairs"], "Most frequent flips", "flip-pair-table")
    )


def _confusion_body(summary: Summary, names: tuple[str, ...]) -> str:
    confusion = summary["confusion"]
    if confusion.empty:
        return _note(f"no {TRUTH_COLUMN} column (or no row with truth): nothing to compare with")
    matrix = confusion[list(names)].to_numpy(dtype=np.int64)
    figure = heatmap_figure(matrix, names, "pseudo-label", "truth", "pseudo-labels vs truth")
    return _figure(figure, "confusion matrix of pseudo-labels vs truth", "confusion-figure")


def _canary_body(summary: Summary) -> str:
    if summary["canary_overall"].empty:
        return _note(f"no {TRUTH_COLUMN} column (or no row with truth): no canary audit")
    tables = [
        ("canary_overall", "Accuracy of teacher, kept and dropped rows", "canary-overall-table"),
        ("canary_classes", "Precision and recall per class", "canary-class-table"),
        ("canary_drops", "Share of each rule's drops that were wrong", "canary-drop-table"),
    ]
    return "".join(
        _table(summary[name], caption, table_id) for name, caption, table_id in tables if not summary[name].empty
    )


# ---------------------------------------------------------------------------
# Image grids


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
        parts = [] if self.data.refined else [_note("no refined table: showing the teacher's predictions")]
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
            return _note("no confidence column in this round's table")
        rows = self.view[self.view["kept"]].sort_values("confidence", kind="stable").head(TILE_CAP)
        return self.grid("low-confidence-grid", "rank-grid", f"{len(rows)} lowest-confidence kept rows", rows)

    def dropped_per_rule(self) -> str:
        """Per dropping rule, its most confident drops (the ones worth a second look)."""
        if not self.data.refined:
            return _note("no refined table: nothing was dropped yet")
        dropped = self.view[~self.view["kept"]]
        if dropped.empty:
            return _note("no row was dropped")
        note = ""
        if "dropped_by" not in self.data.table.columns:
            note = _note("no dropped_by column: every dropped row in one grid")
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
            return _note("no rules/label columns: relabels cannot be attributed to rules")
        view = self.view
        relabelled = view[(view["label"] != view["pred"]).fillna(False).to_numpy(bool)]
        names = list(dict.fromkeys(r for rules in relabelled["rules"] for r in rules))
        if not names:
            return _note("no rule relabelled a row")
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
        return f'<div class="{css_class}" id="{grid_id}"><h3>{_esc(title)}</h3>{content}</div>'


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
        f'<img src="{uri}" alt="{_esc(row.item_id)}" width="{size[0]}" height="{size[1]}">'
        if uri
        else '<div class="noimg" title="image not found"></div>'
    )
    caption = "<br>".join(_esc(line) for line in lines)
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


# ---------------------------------------------------------------------------
# Figures (matplotlib's object API: no pyplot, so no global backend or figure state)


def generation_figure(generations: pd.DataFrame) -> Figure:
    """Test accuracy and macro-F1 (and kept pseudo-label accuracy where known) per generation."""
    figure = Figure(figsize=(6, 3.5))
    axes = figure.add_subplot()
    x = generations["generation"].to_numpy()
    axes.plot(x, generations["test_accuracy"].astype(float), marker="o", label="test accuracy")
    axes.plot(x, generations["macro_f1"].astype(float), marker="s", label="test macro-F1")
    pseudo = generations["pseudo_accuracy"].astype(float)
    if pseudo.notna().any():
        axes.plot(x, pseudo, marker="^", linestyle="--", label="kept pseudo-label accuracy")
    axes.set_xlabel("generation (0 = teacher)")
    axes.set_xticks(x)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    return figure


def confidence_figure(confidence: np.ndarray, kept: np.ndarray | None) -> Figure:
    """Histogram of one round's confidence, kept and dropped rows stacked when refined."""
    figure = Figure(figsize=(6, 3))
    axes = figure.add_subplot()
    bins = np.linspace(0.0, 1.0, CONFIDENCE_BINS + 1)
    valid = ~np.isnan(confidence)
    if kept is None:
        axes.hist(confidence[valid], bins=bins, color="tab:blue", label="all rows")
    else:
        axes.hist(
            [confidence[valid & kept], confidence[valid & ~kept]],
            bins=bins,
            stacked=True,
            color=["tab:green", "tab:red"],
            label=["kept", "dropped"],
        )
    axes.set_xlabel("confidence")
    axes.set_ylabel("rows")
    axes.legend(fontsize="small")
    return figure


def confidence_overview_figure(histograms: pd.DataFrame) -> Figure:
    """One step line per round from `confidence_histograms`' long table."""
    figure = Figure(figsize=(6, 3))
    axes = figure.add_subplot()
    width = 1.0 / CONFIDENCE_BINS
    for k, rows in histograms.groupby("round"):
        edges = np.append(rows["bin"].to_numpy(), rows["bin"].iloc[-1] + width)
        axes.stairs(rows["count"].to_numpy(), edges, label=f"round {k}")
    axes.set_xlabel("confidence")
    axes.set_ylabel("rows")
    axes.legend(fontsize="small")
    return figure


def class_mix_figure(counts: pd.DataFrame) -> Figure:
    """Grouped bars per class: teacher predictions, kept, and kept times copies."""
    figure = Figure(figsize=(7, 3))
    axes = figure.add_subplot()
    series = [c for c in ("teacher", "kept", "kept_copies") if c in counts.columns]
    series = [c for c in series if counts[c].notna().any()]
    # Copies only matter when balancing duplicated rows; otherwise the bar repeats "kept".
    if "kept_copies" in series and counts["kept_copies"].equals(counts["kept"]):
        series.remove("kept_copies")
    x = np.arange(len(counts))
    width = 0.8 / len(series)
    for i, column in enumerate(series):
        axes.bar(x + (i - (len(series) - 1) / 2) * width, counts[column].astype(float), width, label=column)
    axes.set_xticks(x, counts["class"].astype(str).tolist(), rotation=45 if len(counts) > 12 else 0)
    axes.set_xlabel("class")
    axes.set_ylabel("rows")
    axes.legend(fontsize="small")
    return figure


def heatmap_figure(matrix: np.ndarray, names: Sequence[str], xlabel: str, ylabel: str, title: str) -> Figure:
    """(C, C) counts as a heatmap, each non-zero cell annotated."""
    figure = Figure(figsize=(5, 4.5))
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, list(names))
    axes.set_yticks(ticks, list(names))
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for i, j in zip(*np.nonzero(matrix)):
        colour = "white" if matrix[i, j] > threshold else "black"
        axes.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7, color=colour)
    return figure


# ---------------------------------------------------------------------------
# HTML pieces


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _page(title: str, nav: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{nav}\n<h1>{_esc(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def _nav(rounds: Sequence[int], current: int | None) -> str:
    links = ['<a href="index.html">Index</a>']
    for k in rounds:
        here = ' aria-current="page"' if k == current else ""
        links.append(f'<a href="{round_page_name(k)}"{here}>Round {k}</a>')
    return f'<nav id="nav">{"".join(links)}</nav>'


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{section_id}" class="report-section">\n<h2>{_esc(title)}</h2>\n{body}\n</section>\n'


def _note(text: str) -> str:
    return f'<p class="unavailable">{_esc(text)}</p>'


def _table(frame: pd.DataFrame, caption: str | None, table_id: str) -> str:
    """A pandas frame as an HTML table; numbers right-aligned, floats to 4 places, nulls as '-'."""
    numeric = [_is_number_column(frame[c]) for c in frame.columns]
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_esc(format_cell(v))}</td>' if is_num else f"<td>{_esc(format_cell(v))}</td>"
            for v, is_num in zip(row, numeric)
        )
        + "</tr>"
        for row in frame.itertuples(index=False)
    )
    caption_html = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return (
        f'<table class="data" id="{table_id}">{caption_html}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _is_number_column(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _figure(figure: Figure, alt: str, figure_id: str) -> str:
    """A matplotlib figure as an embedded PNG."""
    buffer = io.BytesIO()
    # No Software/date metadata: the same data gives the same bytes.
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight", metadata={"Software": None})
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure class="plot" id="{figure_id}"><img src="{uri}" alt="{_esc(alt)}"></figure>'


__all__ = [
    "CONFIDENCE_PLOT_COLUMNS",
    "GENERATION_PLOT_COLUMNS",
    "INDEX_SECTIONS",
    "ImageEncoder",
    "ROUND_PLOT_COLUMNS",
    "ROUND_SECTIONS",
    "confidence_histograms",
    "generation_frame",
    "round_page_name",
    "round_stats",
    "write_plot_data",
    "write_report",
]
