"""DALI image operations on one batch: decode, frame to S x S, noise, and normalise.

Shared by every pipeline `selftrain.augment` builds. Eval images keep their aspect:
scaled so the shorter side is S, then the centre S x S is cut (`fit_square`). Noised
training images are framed by a geometry (`resolve_geometry`): a translation of that
square (pad_crop) or a random-resized crop of the whole image. The same code runs on
DALI's CPU or GPU operators; on "gpu" JPEGs are decoded on the GPU ("mixed") too.
"""

from __future__ import annotations

import dataclasses

from nvidia.dali import fn, types
from nvidia.dali.auto_aug import rand_augment
from nvidia.dali.data_node import DataNode

from selftrain.config import GEOMETRY_CHOICES, AugmentConfig
from selftrain.errors import ConfigError
from selftrain.normalization import IMAGENET, Normalization
from selftrain.params_training import RESNET_S3

# ImageNet statistics in 0..255 pixel units (DALI normalises uint8 pixels directly):
# what data.mean/data.std "auto" gives.
MEAN: tuple[float, ...] = tuple(IMAGENET.pixel_mean)
STD: tuple[float, ...] = tuple(IMAGENET.pixel_std)

PAD_CROP, RANDOM_RESIZED_CROP = "pad_crop", "random_resized_crop"
# Pixel value (0..255) for areas a translation or rotation uncovers: black, like
# torchvision's RandomCrop/RandAugment, rather than DALI's default grey 128.
FILL_VALUE = 0


def resolve_geometry(geometry: str, arch: str) -> str:
    """Turn ``augment.geometry`` into the training geometry for architecture `arch`.

    Returns:
        "pad_crop" or "random_resized_crop"; "auto" picks pad_crop for resnet-s3 (small
        images, where a random crop of 8% of the area would leave a few pixels) and
        random_resized_crop for a named torchvision architecture (its ImageNet recipe).

    Raises:
        ConfigError: an unknown setting; names ``augment.geometry``.
    """
    if geometry not in GEOMETRY_CHOICES:
        raise ConfigError(f"augment.geometry: must be one of {list(GEOMETRY_CHOICES)}, got {geometry!r}")
    if geometry != "auto":
        return geometry
    return PAD_CROP if arch == RESNET_S3 else RANDOM_RESIZED_CROP


def decode(encoded: DataNode, *, device: str) -> DataNode:
    """Decode a batch of PNG/JPEG file contents to (H, W, 3) uint8 RGB at their own size.

    "gpu" decodes on the GPU ("mixed") and keeps every later operator there; "cpu"
    uses DALI's CPU operators. Grey images become 3 identical channels (RGB output).
    """
    return fn.decoders.image(
        encoded, device="mixed" if device == "gpu" else "cpu", output_type=types.RGB
    )  # (H, W, 3) uint8


def fit_square(images: DataNode, image_size: int) -> DataNode:
    """Scale (H, W, 3) images, keeping their aspect, so the shorter side is S; cut the centre S x S.

    A square image is only scaled; a wide or tall one loses the ends of its longer side
    instead of being stretched.
    """
    images = fn.resize(images, size=[image_size, image_size], mode="not_smaller")  # (>=S, >=S, 3)
    return fn.crop(images, crop=[image_size, image_size])  # (S, S, 3) uint8, centred


def frame(
    images: DataNode, *, image_size: int, noise: AugmentConfig | None, geometry: str, fitted: DataNode | None = None
) -> DataNode:
    """(S, S, 3) uint8 images from decoded (H, W, 3) ones, with the geometry of `noise`.

    Noise-free and pad_crop images are `fit_square`'s (`fitted`, when the caller already
    built it for another view); random_resized_crop takes a random area (8-100%) and
    aspect (3/4-4/3) of the whole image and resizes it to S x S. pad_crop's translation
    follows RandAugment in `noise_and_normalize`.
    """
    if geometry not in (PAD_CROP, RANDOM_RESIZED_CROP):
        raise ValueError(f"geometry must be {PAD_CROP!r} or {RANDOM_RESIZED_CROP!r}, got {geometry!r}")
    if noise is not None and geometry == RANDOM_RESIZED_CROP:
        return fn.random_resized_crop(images, size=[image_size, image_size])  # (S, S, 3) uint8
    return fitted if fitted is not None else fit_square(images, image_size)


def noise_and_normalize(
    images: DataNode,
    *,
    image_size: int,
    noise: AugmentConfig | None,
    normalization: Normalization = IMAGENET,
    geometry: str = PAD_CROP,
) -> DataNode:
    """Optionally noise framed (S, S, 3) uint8 images, then normalise to float32 (3, S, S).

    Args:
        noise: The input-noise settings, or None for noise-free (eval) images.
        normalization: Per-channel mean and std (0..1 units).
        geometry: pad_crop adds the random translation; random_resized_crop (already
            applied by `frame`) adds none.
    """
    mirror = 0
    if noise is not None:
        images = _rand_augment(images, image_size, noise)
        if geometry == PAD_CROP:
            images = _translate(images, image_size, noise.crop_padding)
        images = _cutout(images, noise.cutout)
        if noise.flip:
            mirror = fn.random.coin_flip(probability=0.5)
    return fn.crop_mirror_normalize(
        images,
        dtype=types.FLOAT,
        output_layout="CHW",
        mean=normalization.pixel_mean,
        std=normalization.pixel_std,
        mirror=mirror,
    )  # (3, S, S) float32


def two_views(augment: AugmentConfig) -> tuple[AugmentConfig, AugmentConfig]:
    """(weak, strong) input noise for consistency training (FixMatch's views).

    Weak: translation (and flip where allowed) only; strong: RandAugment at
    `strong_magnitude` and Cutout of `strong_cutout` on top. The teacher's pseudo-target
    comes from the weak view, the loss from the strong.
    """
    weak = dataclasses.replace(augment, num_ops=0, cutout=0.0)
    strong = dataclasses.replace(
        augment,
        magnitude=augment.magnitude if augment.strong_magnitude is None else augment.strong_magnitude,
        cutout=augment.strong_cutout,
    )
    return weak, strong


def _cutout(images: DataNode, share: float) -> DataNode:
    """Erase one square of `share` x the side at a uniformly random place (Cutout)."""
    if share == 0:
        return images
    anchor = fn.random.uniform(range=[0.0, 1.0 - share], shape=[2])  # (y, x), normalised
    return fn.erase(
        images,
        anchor=anchor,
        shape=[share, share],
        axis_names="HW",
        normalized_anchor=True,
        normalized_shape=True,
        fill_value=FILL_VALUE,
    )


def _rand_augment(images: DataNode, image_size: int, noise: AugmentConfig) -> DataNode:
    """RandAugment on (S, S, 3) uint8 images; a no-op when ``num_ops`` is 0."""
    if noise.num_ops == 0:
        return images
    # Passing the shape makes the translate ops shift by a fraction of the image;
    # without it DALI shifts by up to 100 px, which empties a 32 px image.
    return rand_augment.rand_augment(
        images,
        n=noise.num_ops,
        m=noise.magnitude,
        shape=[image_size, image_size],
        fill_value=FILL_VALUE,
    )


def _translate(images: DataNode, image_size: int, padding: int) -> DataNode:
    """Shift by a random whole number of pixels in [-padding, padding] along y and x.

    The same as padding by `padding` on every side and cropping S x S back at a
    random position, done as one out-of-bounds slice.
    """
    if padding == 0:
        return images
    offsets = list(range(-padding, padding + 1))
    start = fn.random.uniform(values=offsets, shape=[2], dtype=types.INT32)  # (y, x)
    return fn.slice(
        images,
        start=start,
        shape=[image_size, image_size],
        axis_names="HW",
        out_of_bounds_policy="pad",
        fill_values=FILL_VALUE,
    )  # (S, S, 3) uint8


__all__ = [
    "FILL_VALUE",
    "MEAN",
    "PAD_CROP",
    "RANDOM_RESIZED_CROP",
    "STD",
    "decode",
    "fit_square",
    "frame",
    "noise_and_normalize",
    "resolve_geometry",
    "two_views",
]
