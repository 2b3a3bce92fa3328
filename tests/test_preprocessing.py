"""Tests for real-photo preprocessing: aspect-kept resize, per-channel normalisation from
params, the training geometry (`resolve_geometry`, random-resized crop) and the
recorded channel count. Real DALI pipelines on the CPU over small generated RGB PNGs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from conftest import REPO_ROOT
from selftrain import infer
from selftrain.augment import MEAN, STD, create_loader, two_views
from selftrain.config import AugmentConfig, DataConfig, params_from_dict
from selftrain.data import IMAGE_SIZE_FILE, input_normalization, load_dataset, prepare_digits
from selftrain.errors import ConfigError, DataError
from selftrain.normalization import IMAGENET, Normalization, resolve_normalization
from selftrain.transforms import resolve_geometry

CPU = AugmentConfig(device="cpu", num_ops=2, magnitude=9, crop_padding=2, flip=True)
SIDE = 12
RED, BLUE, WHITE, BLACK = (255, 0, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def _wide_photo(path) -> None:
    """A 40x24 (W x H) RGB PNG: white, red in the 8 leftmost columns, blue in the 8
    rightmost, and a black 16x16 square in the middle (x 12..27, y 4..19)."""
    pixels = np.full((24, 40, 3), WHITE, dtype=np.uint8)
    pixels[:, :8] = RED
    pixels[:, 32:] = BLUE
    pixels[4:20, 12:28] = BLACK
    Image.fromarray(pixels, mode="RGB").save(path)


def _pixels(images: torch.Tensor, normalization: Normalization = IMAGENET) -> torch.Tensor:
    """Normalised (N, 3, S, S) back to 0..255 values."""
    mean = torch.tensor(normalization.pixel_mean).view(3, 1, 1)
    std = torch.tensor(normalization.pixel_std).view(3, 1, 1)
    return images * std + mean


def _all(loader) -> torch.Tensor:
    return torch.cat([batch[0] for batch in loader])


@pytest.fixture
def wide(tmp_path):
    path = tmp_path / "wide.png"
    _wide_photo(path)
    return path


def test_eval_resize_keeps_the_aspect_and_crops_the_centre(wide):
    loader = create_loader([wide], image_size=SIDE, batch_size=1, train=False, augment=CPU)
    (image,) = _pixels(_all(loader))  # (3, S, S)
    assert image.shape == (3, SIDE, SIDE)
    red, green, blue = image
    # Scaled by 1/2 (24 -> 12 rows; 40 -> 20 columns), the centre 12 columns are kept:
    # the red and blue ends fall outside, where stretching would have kept them.
    assert not ((red > 200) & (green < 100)).any()
    assert not ((blue > 200) & (green < 100)).any()
    # The 16x16 square stays a square (8x8), not squeezed to 5 wide by 8 tall.
    dark = image.amax(dim=0) < 128  # (S, S)
    rows = torch.nonzero(dark.any(dim=1)).flatten()
    cols = torch.nonzero(dark.any(dim=0)).flatten()
    height, width = int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)
    assert height == width == 8
    assert (int(rows[0]), int(cols[0])) == (2, 2)  # centred


def test_square_images_are_only_scaled(tmp_path):
    """A square image fills the square exactly (nothing cropped): its corners survive."""
    pixels = np.full((8, 8, 3), WHITE, dtype=np.uint8)
    pixels[0, 0] = BLACK
    pixels[-1, -1] = BLACK
    Image.fromarray(pixels, mode="RGB").save(tmp_path / "square.png")
    loader = create_loader([tmp_path / "square.png"], image_size=16, batch_size=1, train=False, augment=CPU)
    (image,) = _pixels(_all(loader))
    assert image[:, 0, 0].max() < 128 and image[:, -1, -1].max() < 128
    assert image[:, 8, 8].min() > 250


def test_constant_image_normalises_by_the_given_mean_and_std(tmp_path):
    Image.new("RGB", (10, 6), (51, 102, 204)).save(tmp_path / "flat.png")
    normalization = Normalization(mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 0.125))
    loader = create_loader(
        [tmp_path / "flat.png"], image_size=8, batch_size=1, train=False, augment=CPU, normalization=normalization
    )
    (image,) = _all(loader)
    # (pixel / 255 - mean) / std per channel: (0.2 - 0.1) / 0.5, (0.4 - 0.2) / 0.25, (0.8 - 0.3) / 0.125.
    expected = torch.tensor([0.2, 0.8, 4.0]).view(3, 1, 1).expand(3, 8, 8)
    torch.testing.assert_close(image, expected, rtol=0, atol=1e-4)


def test_auto_normalisation_is_imagenet_as_before():
    assert resolve_normalization(DataConfig(), channels=3) == IMAGENET
    assert MEAN == (0.485 * 255, 0.456 * 255, 0.406 * 255)
    assert STD == (0.229 * 255, 0.224 * 255, 0.225 * 255)
    given = DataConfig(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert resolve_normalization(given, channels=3) == Normalization((0.5,) * 3, (0.25,) * 3)


def test_normalisation_must_match_the_recorded_channels():
    given = DataConfig(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    with pytest.raises(ConfigError, match=r"^data.mean: 3 values for images of 1 channels$"):
        resolve_normalization(given, channels=1)


def test_prepare_records_the_channel_count_and_stages_read_it(tmp_path):
    dataset = prepare_digits(tmp_path, DataConfig(subset=120, labeled_fraction=0.2), seed=0)
    record = json.loads((tmp_path / IMAGE_SIZE_FILE).read_text())
    assert record["channels"] == 3 and dataset.channels == 3
    assert input_normalization(dataset, DataConfig()) == IMAGENET
    (tmp_path / IMAGE_SIZE_FILE).write_text(json.dumps({**record, "channels": 1}))
    with pytest.raises(DataError, match=r"image_size.json: channels is 1; the pipeline yields 3-channel"):
        load_dataset(tmp_path / "manifest.parquet")


@pytest.mark.parametrize("views", [None, "two"])
def test_random_resized_crop_gives_square_noised_views(wide, views):
    crop_only = AugmentConfig(device="cpu", num_ops=0, crop_padding=0, flip=False)
    eval_image = _all(create_loader([wide] * 8, image_size=SIDE, batch_size=4, train=False, augment=crop_only))
    loader = create_loader(
        [wide] * 8,
        image_size=SIDE,
        batch_size=4,
        train=True,
        augment=crop_only,
        views=two_views(crop_only) if views else None,
        geometry="random_resized_crop",
    )
    for batch in loader:
        for images in batch[:-1]:
            assert images.shape == (4, 3, SIDE, SIDE) and images.dtype == torch.float32
    crops = _all(loader)
    # Random areas and aspects of the whole image: the crops differ from one another
    # and from the centre square, and some reach the red or blue ends it leaves out.
    assert len({tuple(c.flatten().tolist()) for c in crops}) > 1
    assert any(not torch.allclose(c, eval_image[0], atol=1e-3) for c in crops)
    pixels = _pixels(crops)
    red_or_blue = ((pixels[:, 0] > 200) | (pixels[:, 2] > 200)) & (pixels[:, 1] < 100)
    assert red_or_blue.flatten(1).any(dim=1).any()


def test_unknown_geometry_is_refused(wide):
    with pytest.raises(ValueError, match="geometry must be"):
        create_loader([wide], image_size=SIDE, batch_size=1, train=True, augment=CPU, geometry="stretch")


@pytest.mark.parametrize(
    "geometry, arch, expected",
    [
        ("auto", "resnet-s3", "pad_crop"),
        ("auto", "resnet18", "random_resized_crop"),
        ("auto", "efficientnet_b0", "random_resized_crop"),
        ("pad_crop", "resnet18", "pad_crop"),
        ("random_resized_crop", "resnet-s3", "random_resized_crop"),
    ],
)
def test_resolve_geometry(geometry, arch, expected):
    assert resolve_geometry(geometry, arch) == expected


def test_resolve_geometry_names_the_key():
    with pytest.raises(ConfigError, match=r"^augment.geometry: must be one of"):
        resolve_geometry("stretch", "resnet-s3")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"mean": [0.5, 0.5], "std": [0.2, 0.2, 0.2]}, r"^data.mean: expected 'auto' or a list of 3 numbers"),
        ({"mean": [0.5] * 3, "std": [0.2, 0.0, 0.2]}, r"^data.std: every value must be > 0"),
        ({"mean": [0.5] * 3, "std": [0.2, -1, 0.2]}, r"^data.std: every value must be > 0"),
        ({"mean": [123.7, 116.3, 103.5], "std": [0.2] * 3}, r"^data.mean: values are fractions of the 0..255"),
        ({"mean": [0.5] * 3}, r"^data.std: give both data.mean and data.std"),
        ({"std": [0.2] * 3}, r"^data.mean: give both data.mean and data.std"),
        ({"mean": "imagenet", "std": "auto"}, r"^data.mean: expected 'auto' or a list of 3"),
        ({"mean": [True, 0.5, 0.5], "std": [0.2] * 3}, r"^data.mean: expected 'auto' or a list of 3"),
    ],
)
def test_bad_mean_or_std_is_one_error_naming_the_key(data, message):
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["data"].update(data)
    with pytest.raises(ConfigError, match=message):
        params_from_dict(raw)


def test_lists_of_three_are_accepted():
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["data"].update(mean=[0.5, 0.5, 0], std=[1, 0.5, 0.25])
    raw["augment"]["geometry"] = "random_resized_crop"
    params = params_from_dict(raw)
    assert params.data.mean == (0.5, 0.5, 0) and params.data.std == (1, 0.5, 0.25)
    assert params.augment.geometry == "random_resized_crop"


def test_a_pseudo_label_part_is_not_reused_after_the_normalisation_changes():
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params = params_from_dict(raw)
    rows = pd.DataFrame({"item_id": ["a", "b"], "path": ["images/a.png", "images/b.png"]})
    before = infer.shard_fingerprint("teacher", rows, params, 0, 16)
    changed = dataclasses.replace(params, data=dataclasses.replace(params.data, mean=(0.5,) * 3, std=(0.25,) * 3))
    assert infer.shard_fingerprint("teacher", rows, changed, 0, 16) != before
