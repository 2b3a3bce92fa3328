"""Image grids of the round pages (selftrain.report.tiles), on synthetic artifacts (see report_fixtures)."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from report_fixtures import DROP_RULE, RELABEL_RULE, Options, Page, build_project, built, section_of  # noqa: F401
from selftrain.report.pages import write_report
from selftrain.report.tiles import TILE_CAP


def test_tiles_are_capped_and_upscaled_nearest_neighbour(built):
    paths, index = built
    page = Page((index.parent / "round2.html").read_text())
    assert page.tiles_by_grid, "no tile grids"
    assert max(page.tiles_by_grid.values()) == TILE_CAP  # ~30 kept per class, capped
    assert page.tiles_by_grid["low-confidence-grid"] == TILE_CAP
    # The first kept tile of class 0 is the item's own PNG, each pixel an 8x8 block.
    text = section_of((index.parent / "round2.html").read_text(), "kept-images")
    match = re.search(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)" width="64" height="64">', text)
    assert match
    tile = np.asarray(Image.open(io.BytesIO(base64.b64decode(match.group(1)))))
    source = np.asarray(Image.open(paths.images_dir / f"{match.group(2)}.png"))
    assert tile.shape == (64, 64)
    assert (tile == np.kron(source, np.ones((8, 8), dtype=np.uint8))).all()


def test_tiles_are_captioned_with_confidence_and_rules(built):
    paths, index = built
    refined = pd.read_parquet(paths.refined(2)).set_index("item_id")
    text = (index.parent / "round2.html").read_text()
    relabels = section_of(text, "rule-relabels")
    tiles = re.findall(r'alt="([^"]+)"[^>]*><figcaption>(.*?)</figcaption>', relabels)
    assert tiles
    for item_id, caption in tiles:
        row = refined.loc[item_id]
        assert f"conf {row['confidence']:.2f}" in caption
        assert "7 → 1" in caption and RELABEL_RULE in caption
    drops = section_of(text, "rule-drops")
    assert f"dropped by {DROP_RULE}" in drops
    # Lowest-confidence grid is sorted ascending over the kept rows.
    low = re.findall(r"conf (\d\.\d\d)", section_of(text, "low-confidence"))
    kept_conf = np.sort(refined.loc[refined["kept"], "confidence"].to_numpy())[:TILE_CAP]
    assert [float(c) for c in low] == pytest.approx(np.round(kept_conf, 2))


def test_missing_image_gives_a_placeholder_not_a_broken_link(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=1, items=20))
    for png in paths.images_dir.glob("*.png"):
        png.unlink()
    index = write_report(paths, paths.root / "reports", range(2))
    text = (index.parent / "round1.html").read_text()
    assert 'class="noimg"' in text
    assert all(img["src"].startswith("data:") for img in Page(text).images)
