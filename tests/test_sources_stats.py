"""prepare's shift check (stats.json): counts, pixel statistics and image sides per split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_params, write_params
from selftrain.config import DataConfig
from selftrain.data import SPLITS, STATS_FILE, prepare_digits
from selftrain.sources import prepare_source
from selftrain.sources.stats import split_stats
from sources_fixtures import folder_tree, folders_config
from stages import prepare as prepare_stage


def test_digits_stats_match_the_images(tmp_path):
    dataset = prepare_digits(tmp_path, DataConfig(subset=120, labeled_fraction=0.2), seed=0)
    stats = split_stats(dataset)
    for split in SPLITS:
        entry = stats["splits"][split]
        assert entry["count"] == entry["sampled"] == len(dataset.rows(split)), split
    labeled = dataset.resolve(dataset.rows("labeled")["path"])
    pixels = np.concatenate([np.asarray(Image.open(p).convert("RGB"), dtype=np.float64).ravel() / 255 for p in labeled])
    assert stats["splits"]["labeled"]["pixel_mean"] == pytest.approx(pixels.mean())
    assert stats["splits"]["labeled"]["pixel_std"] == pytest.approx(pixels.std())
    sides = {Image.open(p).size for p in labeled}
    assert len(sides) == 1  # digits are all one size
    (width, height), = sides
    assert stats["splits"]["labeled"]["width"] == {"min": width, "median": float(width), "max": width}
    assert stats["splits"]["test"]["height"]["max"] == height
    # Random splits of one source: no split is shifted by as much as half a std.
    assert set(stats["shift"]) == {"unlabeled", "val", "test"}
    assert all(abs(v) < 0.5 for v in stats["shift"].values())


def test_a_shifted_pool_shows_in_the_folders_stats(tmp_path):
    raw = folder_tree(tmp_path / "raw", per_class=6, unlabeled=4)
    for path in (raw / "unlabeled").rglob("*.*"):  # a pool of blank white screenshots, 40 x 30
        Image.new("RGB", (40, 30), "white").save(path, "PNG" if path.suffix.lower() == ".png" else "JPEG")
    prepared = prepare_source(tmp_path / "out", folders_config(raw), seed=0)
    stats = split_stats(prepared.dataset)
    pool = stats["splits"]["unlabeled"]
    assert pool["count"] == 4 and pool["pixel_mean"] == pytest.approx(1.0, abs=1e-3)
    assert pool["width"] == {"min": 40, "median": 40.0, "max": 40}
    labeled = stats["splits"]["labeled"]
    assert labeled["width"]["min"] == 8 and labeled["width"]["max"] == 31  # the fixture's odd sizes
    assert stats["shift"]["unlabeled"] > 1.0  # far brighter than the labeled images


def test_the_prepare_stage_writes_stats_json(tmp_path, monkeypatch):
    params = tiny_params()
    params["data"]["subset"] = 200
    write_params(tmp_path, params)
    monkeypatch.chdir(tmp_path)
    prepare_stage.main(["--out-dir", "data/prepared"])
    stats = json.loads((tmp_path / "data" / "prepared" / STATS_FILE).read_text())
    assert sum(stats["splits"][s]["count"] for s in SPLITS) == 200
