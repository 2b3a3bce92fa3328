"""The review queue as one self-contained HTML page: each image inline, big enough to judge."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from selftrain.report.markup import escape
from selftrain.report.tiles import ImageEncoder
from selftrain.review.names import NO_LABELS

# Side of each image on the page: an 8x8 digit becomes 192x192 crisp blocks.
REVIEW_PIXELS = 192

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; }
td, th { border-bottom: 1px solid #ddd; padding: 0.5rem 0.8rem; text-align: left; vertical-align: middle; }
.label { font-size: 1.4rem; font-weight: 600; }
.muted { color: #666; font-size: 0.9rem; }
img { image-rendering: pixelated; border: 1px solid #ccc; }
"""


def queue_html(queue: pd.DataFrame, title: str, images_root: Path, queue_csv: str) -> str:
    """The page: one row per queued item, image, predicted label and confidence, why it was picked.

    A multilabel run's queue (`LABEL_SET_QUEUE_COLUMNS`) shows the predicted set and its
    ``min_margin`` instead, and the instructions name ``correct_labels`` and its forms.

    Args:
        images_root: where the queue's manifest-relative paths start (the prepared directory).
        queue_csv: the CSV beside it, named in the instructions at the top.
    """
    label_sets = "predicted_labels" in queue.columns
    encoder = ImageEncoder(images_root, pixels=REVIEW_PIXELS)
    rows = []
    for rank, item in enumerate(queue.itertuples(index=False), start=1):
        uri = encoder.data_uri(item.path) if item.path else None
        if uri is None:
            picture = '<span class="muted">image not readable</span>'
        else:
            width, height = encoder.size_of(item.path)
            picture = f'<img src="{uri}" width="{width}" height="{height}" alt="{escape(item.item_id)}">'
        rows.append(
            f"<tr><td>{rank}</td><td>{picture}</td>"
            f"<td>{_set_prediction(item) if label_sets else _prediction(item)}</td>"
            f"<td>{escape(item.why)}</td>"
            f'<td class="muted">{escape(item.item_id)}</td></tr>'
        )
    what = (
        f"<code>correct_labels</code> (the whole set, class names joined by <code>|</code> as in "
        f"<code>a|b</code>; <code>{NO_LABELS}</code> for an image that shows no class; or <code>drop</code>)"
        if label_sets
        else "<code>correct_label</code> (a class name, or <code>drop</code>)"
    )
    body = (
        f"<p>Fill in {what} in "
        f"<code>{escape(queue_csv)}</code>, then run <code>selftrain review --apply {escape(queue_csv)}</code>.</p>\n"
        "<table>\n<tr><th>#</th><th>image</th><th>predicted</th><th>why picked</th><th>item_id</th></tr>\n"
        + "\n".join(rows)
        + "\n</table>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def _prediction(item) -> str:
    return (
        f'<div class="label">{escape(item.predicted_label)}</div>'
        f'<div class="muted">confidence {item.confidence:.2f}</div>'
    )


def _set_prediction(item) -> str:
    return (
        f'<div class="label">{escape(item.predicted_labels)}</div>'
        f'<div class="muted">min_margin {item.min_margin:.2g}</div>'
    )
