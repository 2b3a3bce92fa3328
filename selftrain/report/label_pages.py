"""The round page of a multilabel run: label frequency, co-occurrence heat map, rule hits, images with their label sets."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from selftrain.inspection.label_set_tables import PREDICTED_COLUMN, set_matrix
from selftrain.inspection.rounds import RoundData
from selftrain.inspection.views import kept_mask, rules_lists
from selftrain.label_columns import LABELS_COLUMN, TRUE_LABELS_COLUMN
from selftrain.report.figures import class_mix_figure, heatmap_figure
from selftrain.report.markup import escape, figure_html, nav_html, note_html, page_html, section_html, table_html
from selftrain.report.tiles import ImageEncoder

LABEL_ROUND_SECTIONS = ("overview", "label-frequency", "cooccurrence", "rules", "changed-sets", "label-set-images")
# Images shown with their sets, spread evenly over the table.
IMAGES_SHOWN = 48


def label_round_page(data: RoundData, summary: dict[str, pd.DataFrame], rounds: Sequence[int], images: ImageEncoder) -> str:
    """round{k}.html of a multilabel round: every section of LABEL_ROUND_SECTIONS."""
    names = data.class_names
    sections = [
        section_html("overview", "Overview", table_html(summary["label_overview"], None, "overview-table")),
        section_html("label-frequency", "Label frequency before and after the rules", _frequency_body(summary)),
        section_html("cooccurrence", "Co-occurrence of predicted labels", _cooccurrence_body(summary, names)),
        section_html("rules", "Rule hits on label sets", _rules_body(summary)),
        section_html("changed-sets", "Sets the rules changed (before → after)", _changed_body(summary)),
        section_html("label-set-images", "Images with their label sets", label_set_tiles(data, images)),
    ]
    return page_html(f"Round {data.round}", nav_html(rounds, data.round), "".join(sections))


def _frequency_body(summary: dict[str, pd.DataFrame]) -> str:
    counts = summary["label_counts"]
    # class_mix_figure draws "teacher" and "kept" bars per "class".
    bars = counts.rename(columns={"label": "class", "after_rules": "kept"})
    figure = class_mix_figure(bars)
    caption = (
        "teacher: images whose predicted set has the label; after_rules: kept images whose final set has it; "
        "precision/recall: label-level, against the canary's true sets where known"
    )
    return figure_html(figure, "label frequency before and after the rules", "label-frequency-figure") + table_html(
        counts, caption, "label-count-table"
    )


def _cooccurrence_body(summary: dict[str, pd.DataFrame], names: tuple[str, ...]) -> str:
    frame = summary["cooccurrence"]
    matrix = frame[list(names)].to_numpy(dtype=np.int64)
    figure = heatmap_figure(matrix, names, "label", "label", "images predicting both labels")
    caption = "diagonal: images predicting the label; off the diagonal: images predicting both"
    return figure_html(figure, "co-occurrence matrix of predicted labels", "cooccurrence-figure") + table_html(
        frame, caption, "cooccurrence-table"
    )


def _rules_body(summary: dict[str, pd.DataFrame]) -> str:
    rules = summary["label_rules"]
    if rules.empty:
        return note_html("no rules ran on this round's label sets (refine.rules is empty)")
    caption = (
        "added/removed: images per label; label_precision: share of added labels in the true set and removed "
        "labels not in it, over labels_judged (canary truth); val_precision: label moves and drops judged on the "
        "val split's true sets, over val_judged; skipped: below refine.min_rule_precision on val, not applied"
    )
    return table_html(rules, caption, "label-rule-table")


def _changed_body(summary: dict[str, pd.DataFrame]) -> str:
    changed = summary["changed_sets"]
    if changed.empty:
        return note_html("no set was changed or dropped by a rule")
    return table_html(changed, None, "changed-set-table")


def label_set_tiles(data: RoundData, images: ImageEncoder) -> str:
    """Up to IMAGES_SHOWN images, spread over the table, each captioned with its sets."""
    table, names = data.table.reset_index(drop=True), data.class_names
    if table.empty:
        return note_html("no images in this round")
    predicted, _ = set_matrix(table[PREDICTED_COLUMN].tolist(), names)
    kept = kept_mask(table)
    after = set_matrix(table[LABELS_COLUMN].tolist(), names)[0] if LABELS_COLUMN in table.columns else None
    truth, known = (
        set_matrix(table[TRUE_LABELS_COLUMN].tolist(), names)
        if TRUE_LABELS_COLUMN in table.columns
        else (None, np.zeros(len(table), dtype=bool))
    )
    rules = rules_lists(table) or [[] for _ in range(len(table))]
    labels = np.asarray(names, dtype=object)
    shown = np.unique(np.linspace(0, len(table) - 1, min(IMAGES_SHOWN, len(table))).round().astype(int))
    tiles = []
    for i in shown:
        final = predicted[i] if after is None else after[i]
        lines = [str(table["item_id"].iloc[i]), f"teacher {_text(labels[predicted[i]])}"]
        if kept is not None:
            lines.append(f"after {_text(labels[final])}" if kept[i] else "dropped")
        if rules[i]:
            lines.append(", ".join(rules[i]))
        state = "unjudged"
        if truth is not None and known[i]:
            lines.append(f"truth {_text(labels[truth[i]])}")
            state = "right" if (final == truth[i]).all() else "wrong"
        path = table["path"].iloc[i] if "path" in table.columns else None
        uri = images.data_uri(path) if isinstance(path, str) else None
        size = images.size_of(path) if uri else None
        picture = (
            f'<img src="{uri}" alt="{escape(lines[0])}" width="{size[0]}" height="{size[1]}">'
            if uri
            else '<div class="noimg" title="image not found"></div>'
        )
        caption = "<br>".join(escape(line) for line in lines)
        tiles.append(f'<figure class="tile {state}">{picture}<figcaption>{caption}</figcaption></figure>')
    return f'<div class="grid" id="label-set-grid">{"".join(tiles)}</div>'


def _text(names: Sequence[str]) -> str:
    return "{" + ", ".join(names) + "}"
