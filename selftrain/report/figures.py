"""Matplotlib figures of the report (object API: no pyplot, so no global backend or figure state)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from selftrain.report.plot_data import CONFIDENCE_BINS


def generation_figure(generations: pd.DataFrame) -> Figure:
    """Test accuracy and macro-F1 (and kept pseudo-label accuracy where known) per generation;
    in a multilabel run test mAP, micro-F1 and the share of kept sets exactly right."""
    figure = Figure(figsize=(6, 3.5))
    axes = figure.add_subplot()
    x = generations["generation"].to_numpy()
    if "test_map" in generations.columns:  # a multilabel run: mAP, micro-F1, exact match of kept sets
        curves = (("test_map", "o", "-", "test mAP"), ("micro_f1", "s", "-", "test micro-F1"),
                  ("pseudo_exact_match", "^", "--", "kept label sets exactly right"))  # fmt: skip
    else:
        curves = (("test_accuracy", "o", "-", "test accuracy"), ("macro_f1", "s", "-", "test macro-F1"),
                  ("pseudo_accuracy", "^", "--", "kept pseudo-label accuracy"))  # fmt: skip
    for column, marker, style, label in curves:
        values = generations[column].astype(float)
        if values.notna().any():
            axes.plot(x, values, marker=marker, linestyle=style, label=label)
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


def reliability_figure(bins: dict[int, tuple[list[dict], list[dict]]]) -> Figure:
    """One reliability diagram per generation: each confidence bin's test accuracy against
    its mean confidence, with the raw and the temperature-scaled logits, marker area by the
    bin's share of the rows; on the diagonal a model is calibrated. `bins`: {generation: (bins before, bins after)} of
    `selftrain.calibration.reliability`."""
    columns = min(len(bins), 4)
    rows = -(-len(bins) // columns)
    figure = Figure(figsize=(2.6 * columns, 2.6 * rows))
    for i, (gen, (before, after)) in enumerate(sorted(bins.items())):
        axes = figure.add_subplot(rows, columns, i + 1)
        axes.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
        for points, colour, label in ((before, "tab:blue", "raw"), (after, "tab:orange", "scaled")):
            confidence = [b["confidence"] for b in points]
            accuracy = [b["accuracy"] for b in points]
            # A marker's area is its bin's share of the test rows: a bin of a few images
            # swings far from the diagonal by chance, and looks as small as it weighs.
            total = max(sum(b["count"] for b in points), 1)
            sizes = [6 + 150 * b["count"] / total for b in points]
            axes.plot(confidence, accuracy, color=colour, linewidth=0.8, alpha=0.6)
            axes.scatter(confidence, accuracy, s=sizes, color=colour, alpha=0.8, label=label)
        axes.set_xlim(0, 1.02)
        axes.set_ylim(0, 1.02)
        axes.set_title(f"generation {gen}", fontsize="small")
        axes.set_xlabel("confidence", fontsize="small")
        if i % columns == 0:
            axes.set_ylabel("accuracy", fontsize="small")
        axes.tick_params(labelsize="x-small")
        if i == 0:
            axes.legend(fontsize="x-small", loc="upper left")
    figure.tight_layout()
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
