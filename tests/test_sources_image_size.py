"""data.image_size auto: the labeled images' median side, to a multiple of 8, capped, recorded once."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from selftrain.config import DataConfig, load_params
from selftrain.data import IMAGE_SIZE_FILE, input_size, load_dataset
from selftrain.errors import DataError
from selftrain.models import header_for
from selftrain.prediction import predict_split
from selftrain.sources import prepare_source
from selftrain.sources.image_size import auto_image_size
from sources_fixtures import folders_config, image
from conftest import REPO_ROOT


@pytest.mark.parametrize(
    "median, cap, expected",
    [(25, 64, 24), (20, 64, 24), (28, 64, 32), (27.9, 64, 24), (3, 64, 8), (200, 64, 64), (25, 16, 16)],
)
def test_auto_rounds_to_the_nearest_multiple_of_8_halves_up_and_caps(median, cap, expected):
    assert auto_image_size(median, cap) == expected


def thirty_by_twenty(raw, classes=("cat", "dog"), per_class=6):
    """Labeled 30x20 images (median side 25); a pool and val/test of other sizes that must not count."""
    for c, name in enumerate(classes):
        for i in range(per_class):
            image(raw / "labeled" / name / f"{i}.png", size=(30, 20), seed=10 * c + i)
            image(raw / "val" / name / f"{i}.png", size=(60, 60), seed=500 + 10 * c + i)
            image(raw / "test" / name / f"{i}.png", size=(60, 60), seed=900 + 10 * c + i)
    for i in range(4):
        image(raw / "unlabeled" / f"u{i}.png", size=(100, 100), seed=100 + i)
    return raw


class ShapeProbe(nn.Module):
    """Records the input batch's shape; predicts uniform logits over `classes`."""

    def __init__(self, classes: int):
        super().__init__()
        self.classes = classes
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, S, S) -> (B, C)
        self.shapes.append(tuple(x.shape))
        return torch.zeros(x.shape[0], self.classes)


def test_folder_source_of_30x20_images_records_24_and_stages_read_it(tmp_path):
    raw = thirty_by_twenty(tmp_path / "raw")
    out = tmp_path / "prepared"
    prepare_source(out, folders_config(raw), seed=0)
    record = json.loads((out / IMAGE_SIZE_FILE).read_text())
    assert record["image_size"] == 24 and record["median_side"] == 25.0 and record["labeled_images"] == 12

    params = load_params(REPO_ROOT / "params.yaml", overrides=["augment.device=cpu"])
    assert params.data.image_size == "auto"
    # A stage reads the record, not the images: change the record and the stage follows it.
    (out / IMAGE_SIZE_FILE).write_text(json.dumps({**record, "image_size": 32}))
    dataset = load_dataset(out / "manifest.parquet")
    assert dataset.image_size == 32 and input_size(dataset, params.data) == 32
    probe = ShapeProbe(dataset.num_classes)
    predict_split(probe, dataset, dataset.rows("val"), params)
    assert {shape[1:] for shape in probe.shapes} == {(3, 32, 32)}
    assert header_for(probe, params, dataset, 0).image_size == 32


def test_auto_is_capped_and_an_explicit_size_is_not(tmp_path):
    raw = thirty_by_twenty(tmp_path / "raw")
    prepare_source(tmp_path / "capped", folders_config(raw, max_image_size=16), seed=0)
    assert load_dataset(tmp_path / "capped" / "manifest.parquet").image_size == 16
    prepare_source(tmp_path / "explicit", folders_config(raw, image_size=40, max_image_size=16), seed=0)
    assert load_dataset(tmp_path / "explicit" / "manifest.parquet").image_size == 40


def test_digits_auto_records_16(tmp_path):
    dataset = prepare_source(tmp_path, DataConfig(subset=120, labeled_fraction=0.2), seed=0).dataset
    assert dataset.image_size == 16
    assert json.loads((tmp_path / IMAGE_SIZE_FILE).read_text())["image_size"] == 16


def test_auto_without_a_record_names_the_file(tmp_path):
    dataset = prepare_source(tmp_path, DataConfig(subset=120, labeled_fraction=0.2), seed=0).dataset
    (tmp_path / IMAGE_SIZE_FILE).unlink()
    bare = load_dataset(tmp_path / "manifest.parquet")
    assert bare.image_size is None
    assert input_size(bare, dataclasses.replace(DataConfig(), image_size=24)) == 24
    with pytest.raises(DataError, match=r"image_size.json: not found; data.image_size is auto"):
        input_size(bare, DataConfig())
    assert dataset.image_size == 16
