"""The report's pages: index.html and one round{k}.html per round, written into a directory as a whole."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from selftrain.atomic import atomic_dir
from selftrain.data import TRUTH_COLUMN
from selftrain.inspection.data_stats import read_stats, stats_table
from selftrain.inspection.label_set_tables import is_multilabel_table, summarize_label_round
from selftrain.inspection.rounds import RoundData, load_round, previous_predictions
from selftrain.inspection.tables import summarize_round
from selftrain.inspection.views import kept_mask
from selftrain.paths import ProjectPaths
from selftrain.report.figures import (
    class_mix_figure,
    confidence_figure,
    confidence_overview_figure,
    generation_figure,
    heatmap_figure,
    reliability_figure,
)
from selftrain.report.label_pages import label_round_page
from selftrain.report.markup import (
    INDEX_PAGE,
    figure_html,
    nav_html,
    note_html,
    page_html,
    round_page_name,
    section_html,
    table_html,
)
from selftrain.report.plot_data import (
    Summary,
    calibration_by_generation,
    confidence_histograms,
    report_rounds,
    round_stats,
)
from selftrain.report.tiles import ImageEncoder, Tiles, tile_view
from selftrain.summary import generation_table

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
INDEX_SECTIONS = ("generations", "calibration", "rounds", "confidence-overview", "data")


def write_report(paths: ProjectPaths, out_dir: str | Path, generations: Sequence[int]) -> Path:
    """Write the whole report on `generations` (0 = teacher) into `out_dir` (replaced as a
    whole) and return its index page.

    The pages are built in a temporary sibling directory that is swapped in for
    `out_dir` only once complete, so a reader never sees half a report. Anything
    else in `out_dir` is replaced too: give the report a directory of its own.
    """
    out_dir = Path(out_dir)
    rounds = report_rounds(paths, generations)
    images = ImageEncoder(paths.prepared_dir)
    with atomic_dir(out_dir) as tmp:
        summaries = {}
        for k in rounds:
            data = load_round(paths, k)
            if is_multilabel_table(data.table):
                summary = summarize_label_round(data)
                page = label_round_page(data, summary, rounds, images)
            else:
                previous, source = previous_predictions(paths, data)
                summary = summarize_round(data, previous, source)
                page = round_page(data, summary, rounds, images)
            summaries[k] = summary
            (tmp / round_page_name(k)).write_text(page)
        (tmp / INDEX_PAGE).write_text(index_page(paths, generations, rounds, summaries))
    return out_dir / INDEX_PAGE


def index_page(
    paths: ProjectPaths, generations: Sequence[int], rounds: Sequence[int], summaries: dict[int, Summary]
) -> str:
    """index.html: the per-generation curve and table, calibration per generation, links to
    rounds, confidence per round, the data per split."""
    body = (
        section_html("generations", "Accuracy per generation", _generations_body(paths, generations))
        + section_html("calibration", "Calibration per generation", _calibration_body(paths, generations))
        + section_html("rounds", "Rounds", _rounds_body(rounds, summaries))
        + section_html("confidence-overview", "Confidence per round", _confidence_overview_body(paths, rounds))
        + section_html("data", "Data per split (shift check)", _data_body(paths))
    )
    return page_html("Self-training report", nav_html(rounds, None), body)


def _generations_body(paths: ProjectPaths, gens: Sequence[int]) -> str:
    generations = generation_table(paths, max(gens, default=0))
    if generations.empty:
        return note_html("no metrics/gen{k}.json on disk yet")
    # Generation 0 has no pseudo-labels and a torchvision architecture no width/depth:
    # their nulls turn those integer columns into floats.
    for column in ("width", "depth", "pseudo_kept", "val_size"):
        generations[column] = pd.array(generations[column].tolist(), dtype="Int64")
    figure = generation_figure(generations)
    metric = "val_map" if "val_map" in generations.columns else "val_accuracy"
    alt = "test mAP and micro-F1" if metric == "val_map" else "test accuracy and macro-F1"
    curve = figure_html(figure, f"{alt} per generation", "generation-curve")
    caption = (
        f"Per-generation summary (generation 0 is the teacher); {metric} is what the gate and "
        "select_best decide on, over val_size images"
    )
    return curve + table_html(generations, caption, "generation-table")


def _calibration_body(paths: ProjectPaths, gens: Sequence[int]) -> str:
    table, bins = calibration_by_generation(paths, gens)
    if table.empty:
        return note_html(
            "no reliability bins in metrics/gen{k}.json (a multilabel run, or metrics written before they were recorded)"
        )
    figure = figure_html(reliability_figure(bins), "reliability diagram per generation", "reliability-figure")
    caption = (
        "Test ECE (15 bins) and NLL with the raw logits and divided by the temperature fitted on val; "
        "ece_calibrated_model_reads is the mean ECE a perfectly calibrated model with the scaled "
        "confidences reads on the same test_size images: an ECE near it is sampling noise"
    )
    return figure + table_html(table, caption, "calibration-table")


def _rounds_body(rounds: Sequence[int], summaries: dict[int, Summary]) -> str:
    if not rounds:
        return note_html("no rounds on disk yet (data/gen{k}/pseudo_labels/)")
    links = "".join(f'<li><a class="round-link" href="{round_page_name(k)}">Round {k}</a></li>' for k in rounds)
    table = table_html(round_stats(summaries), "Pseudo-labels per round", "round-table")
    return f'<ul id="round-links">{links}</ul>{table}'


def _confidence_overview_body(paths: ProjectPaths, rounds: Sequence[int]) -> str:
    histograms = confidence_histograms(paths, rounds)
    if histograms.empty:
        return note_html("no confidence column in any round")
    figure = confidence_overview_figure(histograms)
    return figure_html(figure, "teacher confidence per round", "confidence-overview-figure")


def _data_body(paths: ProjectPaths) -> str:
    table = stats_table(read_stats(paths.prepared_dir))
    if table.empty:
        return note_html("no data/prepared/stats.json (written by prepare)")
    caption = (
        "Pixel mean/std (RGB in [0, 1]) and image sides as stored, per split; shift: the split's pixel "
        "mean minus the labeled images', in labeled standard deviations (sampled: images measured)"
    )
    return table_html(table, caption, "data-table")


def round_page(data: RoundData, summary: Summary, rounds: Sequence[int], images: ImageEncoder) -> str:
    """round{k}.html: every section of ROUND_SECTIONS for one round."""
    tiles = Tiles(tile_view(data), data, images)
    names = data.class_names
    sections = [
        section_html("overview", "Overview", table_html(summary["overview"], None, "overview-table")),
        section_html("class-mix", "Class mix before and after refinement", _class_mix_body(summary)),
        section_html("confidence", "Teacher confidence", _confidence_body(data, summary)),
        section_html("rules", "Rule hits", _rules_body(summary, data.rules_report)),
        section_html("flips", "Flips since the previous round", _flips_body(summary, names)),
        section_html("confusion", "Pseudo-labels vs truth", _confusion_body(summary, names)),
        section_html("canary", "Canary audit (ground truth)", _canary_body(summary)),
        section_html("kept-images", "Kept pseudo-labels per class", tiles.kept_per_class()),
        section_html("low-confidence", "Lowest-confidence kept pseudo-labels", tiles.low_confidence()),
        section_html("rule-drops", "Dropped, per rule", tiles.dropped_per_rule()),
        section_html("rule-relabels", "Relabelled, per rule", tiles.relabelled_per_rule()),
    ]
    return page_html(f"Round {data.round}", nav_html(rounds, data.round), "".join(sections))


def _class_mix_body(summary: Summary) -> str:
    counts = summary["class_counts"]
    figure = class_mix_figure(counts)
    return figure_html(figure, "class counts before and after refinement", "class-mix-figure") + table_html(
        counts, None, "class-count-table"
    )


def _confidence_body(data: RoundData, summary: Summary) -> str:
    if "confidence" not in data.table.columns:
        return note_html("no confidence column in this round's table")
    figure = confidence_figure(data.table["confidence"].to_numpy(dtype=np.float64), kept_mask(data.table))
    return figure_html(figure, "histogram of teacher confidence", "confidence-figure") + table_html(
        summary["quantiles"], "Score quantiles per predicted class", "quantile-table"
    )


def _rules_body(summary: Summary, report: dict | None) -> str:
    rules = summary["rules"]
    if rules.empty:
        return note_html("no rules_report.json and no rules/dropped_by columns")
    caption = None
    if "val_precision" in rules.columns:
        val_rows = ((report or {}).get("val") or {}).get("rows")
        caption = (
            "precision: share of the rule's relabels and drops that were right on the pool (canary truth); "
            f"val_precision: the same on the val split ({val_rows} images), over the val_judged rows "
            "the rule relabelled or dropped; skipped: below refine.min_rule_precision on val, not applied"
        )
    return table_html(rules, caption, "rule-table")


def _flips_body(summary: Summary, names: tuple[str, ...]) -> str:
    flips = summary["flips"]
    if flips.empty:
        return note_html("no previous round to compare with")
    matrix = summary["flip_matrix"][list(names)].to_numpy(dtype=np.int64)
    figure = heatmap_figure(matrix, names, "current prediction", "previous prediction", "prediction flips")
    return (
        figure_html(figure, "flip matrix between consecutive rounds", "flip-figure")
        + table_html(flips, None, "flip-table")
        + table_html(summary["flip_pairs"], "Most frequent flips", "flip-pair-table")
    )


def _confusion_body(summary: Summary, names: tuple[str, ...]) -> str:
    confusion = summary["confusion"]
    if confusion.empty:
        return note_html(f"no {TRUTH_COLUMN} column (or no row with truth): nothing to compare with")
    matrix = confusion[list(names)].to_numpy(dtype=np.int64)
    figure = heatmap_figure(matrix, names, "pseudo-label", "truth", "pseudo-labels vs truth")
    return figure_html(figure, "confusion matrix of pseudo-labels vs truth", "confusion-figure")


def _canary_body(summary: Summary) -> str:
    if summary["canary_overall"].empty:
        return note_html(f"no {TRUTH_COLUMN} column (or no row with truth): no canary audit")
    tables = [
        ("canary_overall", "Accuracy of teacher, kept and dropped rows", "canary-overall-table"),
        ("canary_classes", "Precision and recall per class", "canary-class-table"),
        ("canary_drops", "Share of each rule's drops that were wrong", "canary-drop-table"),
    ]
    return "".join(
        table_html(summary[name], caption, table_id) for name, caption, table_id in tables if not summary[name].empty
    )
