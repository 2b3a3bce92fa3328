"""Tests for selftrain.augment: real DALI pipelines on the CPU operators, tiny PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selftrain.augment import MEAN, STD, create_loader, resolve_device, two_views
from selftrain.config import AugmentConfig
from selftrain.errors import ConfigError, DataError

NUM_IMAGES = 20
IMAGE_SIZE = 16
# Does not divide NUM_IMAGES, so every epoch ends with a partial batch.
BATCH_SIZE = 6
CPU = AugmentConfig(device="cpu", num_ops=2, magnitude=9, crop_padding=2, flip=True)
MEAN_CHW = torch.tensor(MEAN).view(3, 1, 1)
STD_CHW = torch.tensor(STD).view(3, 1, 1)


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> list[Path]:
    """NUM_IMAGES 8x8 grey PNGs, each a different random pattern."""
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i in range(NUM_IMAGES):
        pixels = np.random.default_rng(i).integers(0, 256, size=(8, 8), dtype=np.uint8)
        path = folder / f"{i:02d}.png"
        Image.fromarray(pixels, mode="L").save(path)
        paths.append(path)
    return paths


def _epoch(loader) -> tuple[torch.Tensor, torch.Tensor]:
    """All batches of one epoch: images (N, 3, S, S), indices (N,)."""
    batches = list(loader)
    return torch.cat([images for images, _ in batches]), torch.cat([idx for _, idx in batches])


def _loader(paths, *, train: bool, augment_cfg: AugmentConfig = CPU, **kwargs):
    return create_loader(
        paths,
        image_size=IMAGE_SIZE,
        batch_size=BATCH_SIZE,
        train=train,
        augment=augment_cfg,
        **kwargs,
    )


def test_eval_batches_have_shape_dtype_and_path_order(paths):
    loader = _loader(paths, train=False)
    batches = list(loader)
    assert len(loader) == len(batches) == 4
    assert loader.num_samples == NUM_IMAGES
    assert [len(idx) for _, idx in batches] == [6, 6, 6, 2]
    for images, indices in batches:
        assert images.shape == (len(indices), 3, IMAGE_SIZE, IMAGE_SIZE)
        assert images.dtype == torch.float32 and images.device.type == "cpu"
        assert indices.dtype == torch.int64 and indices.device.type == "cpu"
    assert torch.cat([idx for _, idx in batches]).tolist() == list(range(NUM_IMAGES))


def test_white_and_black_images_normalise_to_mean_std_values(tmp_path):
    white, black = tmp_path / "white.png", tmp_path / "black.png"
    Image.new("L", (8, 8), 255).save(white)
    Image.new("L", (8, 8), 0).save(black)
    images, _ = _epoch(_loader([white, black], train=False))
    expected_white = ((255 - MEAN_CHW) / STD_CHW).expand(3, IMAGE_SIZE, IMAGE_SIZE)
    expected_black = ((0 - MEAN_CHW) / STD_CHW).expand(3, IMAGE_SIZE, IMAGE_SIZE)
    torch.testing.assert_close(images[0], expected_white, rtol=0, atol=1e-5)
    torch.testing.assert_close(images[1], expected_black, rtol=0, atol=1e-5)


def test_grey_png_decodes_to_three_equal_channels(paths):
    images, _ = _epoch(_loader(paths, train=False))
    pixels = images * STD_CHW + MEAN_CHW  # back to 0..255, (N, 3, S, S)
    torch.testing.assert_close(pixels[:, 1], pixels[:, 0], rtol=0, atol=1e-3)
    torch.testing.assert_close(pixels[:, 2], pixels[:, 0], rtol=0, atol=1e-3)
    assert pixels.std() > 10  # the patterns survived decoding and resizing


def test_eval_is_deterministic_across_passes_and_loaders(paths):
    loader = _loader(paths, train=False)
    first_images, first_idx = _epoch(loader)
    second_images, second_idx = _epoch(loader)
    fresh_images, _ = _epoch(_loader(paths, train=False, seed=123))
    assert first_idx.tolist() == second_idx.tolist() == list(range(NUM_IMAGES))
    assert torch.equal(first_images, second_images)
    assert torch.equal(first_images, fresh_images)


def test_train_noise_changes_most_images(paths):
    eval_images, _ = _epoch(_loader(paths, train=False))
    train_images, train_idx = _epoch(_loader(paths, train=True))
    changed = (train_images - eval_images[train_idx]).abs().flatten(1).amax(dim=1) > 1e-3
    assert changed.sum() >= 0.8 * NUM_IMAGES


def test_train_without_noise_gives_eval_images(paths):
    eval_images, _ = _epoch(_loader(paths, train=False))
    train_images, train_idx = _epoch(_loader(paths, train=True, noise=False))
    assert train_idx.tolist() != list(range(NUM_IMAGES))  # shuffled ...
    assert torch.equal(train_images, eval_images[train_idx])  # ... but not noised


def _shifted(image: torch.Tensor, dy: int, dx: int, fill: torch.Tensor) -> torch.Tensor:
    """(3, S, S) image whose pixel (y, x) is image[y + dy, x + dx], `fill` outside."""
    size = image.shape[-1]
    out = fill.expand_as(image).clone()
    ys, xs = slice(max(0, -dy), min(size, size - dy)), slice(max(0, -dx), min(size, size - dx))
    yt, xt = slice(ys.start + dy, ys.stop + dy), slice(xs.start + dx, xs.stop + dx)
    out[:, ys, xs] = image[:, yt, xt]
    return out


def test_translation_shifts_by_whole_pixels_within_padding(paths):
    padding = 2
    translate_only = AugmentConfig(device="cpu", num_ops=0, crop_padding=padding, flip=False)
    eval_images, _ = _epoch(_loader(paths, train=False))
    train_images, train_idx = _epoch(_loader(paths, train=True, augment_cfg=translate_only))
    fill = (0 - MEAN_CHW) / STD_CHW  # padded pixels are black
    shifts = set()
    for image, index in zip(train_images, train_idx):
        matches = [
            (dy, dx)
            for dy in range(-padding, padding + 1)
            for dx in range(-padding, padding + 1)
            if torch.allclose(image, _shifted(eval_images[index], dy, dx, fill), atol=1e-5)
        ]
        assert matches, f"sample {index} is not a shift of its eval image"
        shifts.update(matches)
    assert len(shifts) > 5  # the offsets really vary


def test_flip_mirrors_some_images_horizontally(paths):
    flip_only = AugmentConfig(device="cpu", num_ops=0, crop_padding=0, flip=True)
    eval_images, _ = _epoch(_loader(paths, train=False))
    train_images, train_idx = _epoch(_loader(paths, train=True, augment_cfg=flip_only))
    reference = eval_images[train_idx]
    same = [torch.equal(a, b) for a, b in zip(train_images, reference)]
    mirrored = [torch.equal(a, b.flip(-1)) for a, b in zip(train_images, reference)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 0 < sum(mirrored) < NUM_IMAGES


@pytest.mark.parametrize("train", [True, False])
def test_every_sample_once_per_epoch(paths, train):
    loader = _loader(paths, train=train)
    for _ in range(3):
        batches = list(loader)
        indices = torch.cat([idx for _, idx in batches])
        assert sorted(indices.tolist()) == list(range(NUM_IMAGES))
        assert len(batches) == len(loader)
        assert len(batches[-1][1]) == NUM_IMAGES % BATCH_SIZE



def test_shards_split_each_epoch_without_overlap(paths):
    num_shards = 3
    loaders = [
        _loader(paths, train=True, shard_id=k, num_shards=num_shards) for k in range(num_shards)
    ]
    assert sum(loader.num_samples for loader in loaders) == NUM_IMAGES
    for _ in range(2):
        seen = []
        for loader in loaders:
            batches = list(loader)
            assert len(batches) == len(loader)  # no empty batch slips through
            seen += torch.cat([idx for _, idx in batches]).tolist()
        assert sorted(seen) == list(range(NUM_IMAGES))


def test_train_order_changes_per_epoch_and_repeats_with_seed(paths):
    loader = _loader(paths, train=True, seed=7)
    first = _epoch(loader)[1].tolist()
    second = _epoch(loader)[1].tolist()
    fresh = _loader(paths, train=True, seed=7)
    assert first != second
    assert _epoch(fresh)[1].tolist() == first
    assert _epoch(fresh)[1].tolist() == second
    assert _epoch(_loader(paths, train=True, seed=8))[1].tolist() != first


def test_unfinished_epoch_does_not_leak_into_the_next(paths):
    loader = _loader(paths, train=False)
    for _ in loader:
        break
    assert _epoch(loader)[1].tolist() == list(range(NUM_IMAGES))


def test_resolve_device_on_a_machine_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="augment.device"):
        resolve_device("gpu")
    with pytest.raises(ConfigError, match="augment.device"):
        resolve_device("tpu")


def test_resolve_device_prefers_gpu_when_cuda_is_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "gpu"
    assert resolve_device("gpu") == "gpu"
    assert resolve_device("cpu") == "cpu"


def test_gpu_device_without_cuda_fails_before_building(paths, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="augment.device"):
        _loader(paths, train=False, augment_cfg=AugmentConfig(device="gpu"))


def test_missing_file_is_named(paths, tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(DataError, match="nope.png"):
        _loader([*paths, missing], train=False)


def test_empty_paths_rejected():
    with pytest.raises(DataError, match="empty"):
        _loader([], train=False)



def test_two_views_differ_and_share_the_source_index(paths):
    weak_cfg, strong_cfg = two_views(CPU)
    assert weak_cfg.num_ops == 0 and strong_cfg.num_ops == CPU.num_ops
    loader = _loader(paths, train=True, views=(None, strong_cfg), seed=3)
    plain, noised, idx = (torch.cat(parts) for parts in zip(*loader))
    assert len(idx) == NUM_IMAGES and sorted(idx.tolist()) == list(range(NUM_IMAGES))
    # The un-noised view of row i is exactly the eval image of file idx[i]: both views
    # come from the same file, read once.
    eval_images, eval_idx = _epoch(_loader(paths, train=False))
    assert torch.equal(plain, eval_images[idx])
    changed = [not torch.equal(a, b) for a, b in zip(plain, noised)]
    assert sum(changed) >= NUM_IMAGES // 2


def test_cutout_blanks_one_square_of_the_configured_side(tmp_path):
    # White images: the erased square is the only black area (no other noise on).
    folder = tmp_path / "white"
    folder.mkdir()
    white = []
    for i in range(4):
        white.append(folder / f"{i}.png")
        Image.fromarray(np.full((8, 8), 255, np.uint8), mode="L").save(white[-1])
    cutout_only = AugmentConfig(device="cpu", num_ops=0, crop_padding=0, cutout=0.5)
    images, _ = _epoch(_loader(white, train=True, augment_cfg=cutout_only))
    black = torch.isclose(images[:, 0], (0 - MEAN_CHW[0]) / STD_CHW[0], atol=1e-5)  # (N, S, S)
    side = IMAGE_SIZE // 2
    anchors = set()
    for mask in black:
        rows, cols = mask.any(dim=1).nonzero().flatten(), mask.any(dim=0).nonzero().flatten()
        assert len(rows) == side and len(cols) == side, "one square of half the side"
        assert int(mask.sum()) == side * side
        anchors.add((int(rows[0]), int(cols[0])))
    assert len(anchors) > 1  # placed at random


def test_strong_view_has_its_own_magnitude_and_cutout_and_the_weak_view_none():
    cfg = AugmentConfig(device="cpu", num_ops=2, magnitude=5, cutout=0.0, strong_magnitude=12, strong_cutout=0.4)
    weak, strong = two_views(cfg)
    assert (weak.num_ops, weak.cutout) == (0, 0.0)
    assert (strong.num_ops, strong.magnitude, strong.cutout) == (2, 12, 0.4)
    assert two_views(AugmentConfig(device="cpu", magnitude=7))[1].magnitude == 7  # null: `magnitude`
