"""DALI input pipelines: image files on disk -> normalised PyTorch batches.

`create_loader` is the one factory. Train mode shuffles every epoch and, with
`noise=True`, adds the student's input noise (RandAugment, a training geometry,
optional horizontal flip); eval mode is noise-free, unshuffled and deterministic,
for teacher inference and evaluation. Eval images keep their aspect: scaled so the
shorter side is S, then the centre S x S is cut (`fit_square`). The training geometry
is a translation of that square (pad_crop) or a random-resized crop of the whole image
(`resolve_geometry`). `create_loader(..., views=two_views(augment))` reads each image
once and yields two views of it (a weak and a strong one) for consistency training.
`decode`, `frame` and `noise_and_normalize` hold every image operation and are shared
by all modes; the backend (DALI GPU or CPU operators) is chosen once by
`resolve_device` from ``augment.device``; on "gpu" JPEGs are decoded on the GPU too.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Iterator, Sequence

import torch
from nvidia.dali import fn, pipeline_def, types
from nvidia.dali.auto_aug import rand_augment
from nvidia.dali.data_node import DataNode
from nvidia.dali.pipeline import Pipeline
from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

from selftrain.config import DEVICE_CHOICES, GEOMETRY_CHOICES, AugmentConfig
from selftrain.errors import ConfigError, DataError
from selftrain.normalization import IMAGENET, Normalization

# ImageNet statistics in 0..255 pixel units (DALI normalises uint8 pixels directly):
# what data.mean/data.std "auto" gives.
MEAN: tuple[float, ...] = tuple(IMAGENET.pixel_mean)
STD: tuple[float, ...] = tuple(IMAGENET.pixel_std)

# The architecture made for 8-32 px images, whose inputs a translation frames best.
SMALL_IMAGE_ARCH = "resnet-s3"
PAD_CROP, RANDOM_RESIZED_CROP = "pad_crop", "random_resized_crop"
# Pixel value (0..255) for areas a translation or rotation uncovers: black, like
# torchvision's RandomCrop/RandAugment, rather than DALI's default grey 128.
FILL_VALUE = 0
# Batches the pipeline prepares ahead of the consumer; small, as the images are small.
PREFETCH_QUEUE_DEPTH = 2
_READER_NAME = "Reader"


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
    return PAD_CROP if arch == SMALL_IMAGE_ARCH else RANDOM_RESIZED_CROP


def resolve_device(setting: str) -> str:
    """Turn ``augment.device`` into the backend the pipeline runs on.

    Args:
        setting: "auto", "gpu" or "cpu".

    Returns:
        "gpu" or "cpu"; "auto" picks "gpu" when CUDA is available.

    Raises:
        ConfigError: "gpu" without CUDA, or an unknown setting; names ``augment.device``.
    """
    if setting not in DEVICE_CHOICES:
        raise ConfigError(f"augment.device: must be one of {list(DEVICE_CHOICES)}, got {setting!r}")
    if setting == "cpu":
        return "cpu"
    has_cuda = torch.cuda.is_available()
    if setting == "gpu" and not has_cuda:
        raise ConfigError(
            "augment.device: 'gpu' needs CUDA, but torch.cuda.is_available() is False; "
            "set it to 'auto' or 'cpu'"
        )
    return "gpu" if has_cuda else "cpu"


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


def torch_device(dali_device: str) -> torch.device:
    """The torch device that a pipeline on `dali_device` ("gpu" or "cpu") delivers to."""
    return torch.device("cuda") if dali_device == "gpu" else torch.device("cpu")


def preprocess(
    encoded: DataNode,
    *,
    image_size: int,
    device: str,
    noise: AugmentConfig | None,
    normalization: Normalization = IMAGENET,
    geometry: str = PAD_CROP,
) -> DataNode:
    """Decode, frame, optionally noise, and normalise one batch of encoded images.

    Returns:
        Float32 batch, (3, S, S) per sample, normalised by `normalization`.
    """
    images = frame(decode(encoded, device=device), image_size=image_size, noise=noise, geometry=geometry)
    return noise_and_normalize(
        images, image_size=image_size, noise=noise, normalization=normalization, geometry=geometry
    )


def two_views(augment: AugmentConfig) -> tuple[AugmentConfig, AugmentConfig]:
    """(weak, strong) input noise for consistency training (FixMatch's views).

    Weak: translation (and flip where allowed) only; strong: the configured RandAugment
    on top. The teacher's pseudo-target comes from the weak view, the loss from the strong.
    """
    return dataclasses.replace(augment, num_ops=0), augment


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


@pipeline_def(enable_conditionals=True)  # auto_aug picks its ops with DALI conditionals
def _file_pipeline(
    files: list[str],
    *,
    image_size: int,
    device: str,
    views: tuple[AugmentConfig | None, ...],
    normalization: Normalization,
    geometry: str,
    shuffle: bool,
    shuffle_seed: int,
    shard_id: int,
    num_shards: int,
) -> tuple[DataNode, ...]:
    """Read `files`, decode each once, and return one output per view (its noise, or None
    for none) plus the indices; the label of each file is its position in `files`."""
    # pad_last_batch ends every epoch on a shard boundary (the iterator trims the
    # padding again, LastBatchPolicy.PARTIAL); without it the last batch reads into
    # the next epoch, which then repeats some samples and misses others.
    # shuffle_after_epoch permutes the whole list each epoch, the same on every shard
    # given the same seed; random_shuffle shuffles the list once, then only mixes it
    # through a buffer (initial_fill).
    shuffle_args = {"shuffle_after_epoch": True, "shuffle_after_epoch_seed": shuffle_seed}
    encoded, indices = fn.readers.file(
        files=files,
        labels=list(range(len(files))),
        pad_last_batch=True,
        shard_id=shard_id,
        num_shards=num_shards,
        name=_READER_NAME,
        **(shuffle_args if shuffle else {}),
    )
    images = decode(encoded, device=device)  # (H, W, 3) uint8
    # One aspect-kept square shared by the views that use it (noise-free and pad_crop ones).
    shares_square = any(noise is None or geometry == PAD_CROP for noise in views)
    fitted = fit_square(images, image_size) if shares_square else None
    outputs = [
        noise_and_normalize(
            frame(images, image_size=image_size, noise=noise, geometry=geometry, fitted=fitted),
            image_size=image_size,
            noise=noise,
            normalization=normalization,
            geometry=geometry,
        )
        for noise in views
    ]
    return (*outputs, indices)


class ImageLoader:
    """Batches from one DALI pipeline: each iteration is one epoch; iterate again for the next.

    The pipeline is built once and reused for every epoch. One iteration at a time:
    an epoch left unfinished is run to its end before the next one starts.

    Attributes:
        num_samples: Samples in this loader's shard, each seen once per epoch.
        batch_size: Samples per full batch; the last batch of an epoch may be smaller.
        device: "gpu" or "cpu", where the images end up.
    """

    def __init__(
        self, pipeline: Pipeline, *, num_samples: int, batch_size: int, device: str, num_views: int = 1
    ):
        """Wrap a built file-reader pipeline.

        Args:
            pipeline: A `_file_pipeline` whose reader is named ``_READER_NAME``.
            num_samples: Samples in this pipeline's shard.
            batch_size: Samples per full batch.
            device: "gpu" or "cpu", where the images end up.
            num_views: Image outputs of the pipeline (before the indices).
        """
        self._views = [f"view{i}" for i in range(num_views)]
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.device = device
        # reader_name lets the iterator know the epoch size; auto_reset rewinds it
        # after each epoch so `for` can start the next one.
        self._iterator = DALIGenericIterator(
            pipeline,
            [*self._views, "indices"],
            reader_name=_READER_NAME,
            last_batch_policy=LastBatchPolicy.PARTIAL,
            auto_reset=True,
        )
        self._epoch_open = False

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        """Run one epoch.

        Yields:
            images: float32 (B, 3, S, S), normalised per channel; on CUDA when the device
                is "gpu", else on the CPU. One tensor per view (two for `two_views`).
            indices: int64 (B,), on the CPU: each sample's position in the `paths` given
                to `create_loader`.
        """
        # DALI cannot reset mid-epoch; finishing the open epoch keeps the next one whole.
        if self._epoch_open:
            for _ in self._iterator:
                pass
        self._epoch_open = True
        for (batch,) in self._iterator:
            indices = batch["indices"].view(-1).long()  # (B, 1) int32 -> (B,) int64
            # With num_shards > 1, DALI keeps shards in step by giving a smaller shard
            # an empty last batch; a training step cannot use it.
            if indices.numel() > 0:
                yield (*(batch[view] for view in self._views), indices)
        self._epoch_open = False


def create_loader(
    paths: Sequence[str | Path],
    *,
    image_size: int,
    batch_size: int,
    train: bool,
    augment: AugmentConfig,
    noise: bool = True,
    seed: int = 0,
    shard_id: int = 0,
    num_shards: int = 1,
    views: tuple[AugmentConfig | None, ...] | None = None,
    normalization: Normalization = IMAGENET,
    geometry: str = PAD_CROP,
) -> ImageLoader:
    """Build a DALI loader over image files.

    Args:
        paths: PNG/JPEG files; a sample's index is its position in this list.
        image_size: Side S of the square images the loader yields.
        batch_size: Samples per batch (the last batch of an epoch may be smaller).
        train: True shuffles every epoch (deterministically from `seed`) and allows noise;
            False gives noise-free images in the order of `paths`, the same every pass.
        augment: Backend (``device``), thread count and the input-noise settings.
        noise: In train mode, whether to add input noise (RandAugment, translation, flip).
        seed: Seeds the shuffle (the same on every shard, so shards split one permutation)
            and the noise (different per shard).
        shard_id: Which shard of the samples this loader reads.
        views: In train mode, the noise of each view of an image, read and decoded once
            (e.g. `two_views(augment)`); None: one view, noised by `augment` when `noise`.
        num_shards: How many shards the samples are split into (one per DDP rank).
            On "gpu" the pipeline runs on torch.cuda.current_device(), so set each
            rank's device before calling.
        normalization: Per-channel mean and std (`selftrain.data.input_normalization`);
            ImageNet's, as ``data.mean``/``data.std`` "auto".
        geometry: How noised views are framed: "pad_crop" or "random_resized_crop"
            (`resolve_geometry`). Noise-free images are always `fit_square`'s.

    Returns:
        An ImageLoader with its pipeline built.

    Raises:
        DataError: `paths` is empty, a file does not exist, or the shard has no samples.
        ConfigError: ``augment.device`` is "gpu" without CUDA.
    """
    files = _existing_files(paths)
    if not 0 <= shard_id < num_shards:
        raise ValueError(f"shard_id must be in [0, {num_shards}), got {shard_id}")
    num_samples = _shard_size(len(files), shard_id, num_shards)
    if num_samples == 0:
        raise DataError(f"shard {shard_id} of {num_shards} gets none of the {len(files)} images")
    device = resolve_device(augment.device)
    if views is None or not train:
        views = (augment if train and noise else None,)
    pipeline = _file_pipeline(
        files,
        image_size=image_size,
        device=device,
        views=tuple(views),
        normalization=normalization,
        geometry=geometry,
        shuffle=train,
        shuffle_seed=seed,
        shard_id=shard_id,
        num_shards=num_shards,
        batch_size=batch_size,
        num_threads=augment.num_threads,
        # None builds a CPU-only pipeline (no CUDA context needed).
        device_id=torch.cuda.current_device() if device == "gpu" else None,
        # Distinct for each (seed, shard) pair, so ranks draw different noise.
        seed=seed * num_shards + shard_id,
        prefetch_queue_depth=PREFETCH_QUEUE_DEPTH,
    )
    pipeline.build()
    return ImageLoader(
        pipeline, num_samples=num_samples, batch_size=batch_size, device=device, num_views=len(views)
    )


def _existing_files(paths: Sequence[str | Path]) -> list[str]:
    """Return `paths` as strings; raise DataError if empty or if a file is missing."""
    if len(paths) == 0:
        raise DataError("create_loader: no image paths given (empty list)")
    files = [str(path) for path in paths]
    missing = [file for file in files if not Path(file).is_file()]
    if missing:
        raise DataError(
            f"{missing[0]}: image file not found ({len(missing)} of {len(files)} paths missing)"
        )
    return files


def _shard_size(total: int, shard_id: int, num_shards: int) -> int:
    """Samples in one shard, split the way DALI's readers split them."""
    start = total * shard_id // num_shards
    end = total * (shard_id + 1) // num_shards
    return end - start


__all__ = [
    "MEAN",
    "STD",
    "ImageLoader",
    "create_loader",
    "decode",
    "fit_square",
    "frame",
    "noise_and_normalize",
    "preprocess",
    "resolve_device",
    "resolve_geometry",
    "torch_device",
    "two_views",
]
