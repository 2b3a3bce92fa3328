"""DALI input pipelines: image files on disk -> normalised PyTorch batches.

`create_loader` is the one factory. Train mode shuffles every epoch and, with
`noise=True`, adds the student's input noise (RandAugment, a training geometry,
optional horizontal flip); eval mode is noise-free, unshuffled and deterministic,
for teacher inference and evaluation. `create_loader(..., views=two_views(augment))`
reads each image once and yields two views of it (a weak and a strong one) for
consistency training. Every image operation is in `selftrain.transforms`, shared by
all modes; the backend (DALI GPU or CPU operators) is chosen once by `resolve_device`
from ``augment.device``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, Sequence

import torch
from nvidia.dali import fn, pipeline_def
from nvidia.dali.data_node import DataNode
from nvidia.dali.pipeline import Pipeline
from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

from selftrain.config import DEVICE_CHOICES, AugmentConfig
from selftrain.errors import ConfigError, DataError
from selftrain.normalization import IMAGENET, Normalization
from selftrain.transforms import (
    MEAN,
    PAD_CROP,
    STD,
    decode,
    fit_square,
    frame,
    noise_and_normalize,
    resolve_geometry,
    two_views,
)

# Batches the pipeline prepares ahead of the consumer; small, as the images are small.
PREFETCH_QUEUE_DEPTH = 2
_READER_NAME = "Reader"


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


def torch_device(dali_device: str) -> torch.device:
    """The torch device that a pipeline on `dali_device` ("gpu" or "cpu") delivers to."""
    return torch.device("cuda") if dali_device == "gpu" else torch.device("cpu")


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


# MEAN, STD, resolve_geometry and two_views are re-exported: callers build loaders from here.
__all__ = [
    "MEAN",
    "STD",
    "ImageLoader",
    "create_loader",
    "resolve_device",
    "resolve_geometry",
    "torch_device",
    "two_views",
]
