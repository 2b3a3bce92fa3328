"""The `data` section of params.yaml: where images come from (digits, digits-mosaic, folders,
a manifest), how they are split, their size and normalisation; with its checks across keys.
Part of `selftrain.params_schema.Params` (the module docstring there says how sections work).
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator, model_validator
from pydantic.dataclasses import dataclass

from selftrain.params_fields import SECTION, int_or_auto, invalid

# digits: embedded; folders: data.raw_dir/labeled/<class>/...; manifest: a CSV or Parquet file.
Source = Literal["digits", "digits-mosaic", "folders", "manifest"]
# Channels of every image the pipeline yields: DALI decodes each source to RGB (a grey
# image becomes 3 equal channels), which is what torchvision's architectures take.
INPUT_CHANNELS = 3
# data.mean / data.std: one value per channel, as fractions of the 0..255 pixel range
# (torchvision's convention), or "auto" (`selftrain.normalization`).
ChannelStats = tuple[StrictFloat | StrictInt, ...] | Literal["auto"]
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 512
# data.image_size: a side in pixels, or "auto" (prepare picks it; `selftrain.sources.image_size`).
ImageSize = Annotated[StrictInt, Field(ge=MIN_IMAGE_SIZE, le=MAX_IMAGE_SIZE)] | Literal["auto"]
SOURCE_CHOICES: tuple[str, ...] = typing.get_args(Source)
MANIFEST_SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True, config=SECTION)
class MosaicConfig:
    """data.mosaic: the digits-mosaic source's 2x2 mosaics (`selftrain.sources.mosaic`)."""

    count: StrictInt = Field(2000, ge=1, le=10**7)
    # Share of the cells left blank (an all-blank mosaic has the empty label set).
    blank_share: StrictFloat = Field(0.25, ge=0.0, le=1.0)
    seed: StrictInt = Field(0, ge=0, le=2**31 - 1)


@dataclass(frozen=True, config=SECTION)
class DataConfig:
    source: Source = "digits"
    # "auto": 16 for digits; for own data the labeled images' median side, rounded to a
    # multiple of 8 and capped by max_image_size. Prepare records the size it chose
    # (data/prepared/image_size.json) and every later stage reads that record.
    image_size: ImageSize = "auto"
    max_image_size: StrictInt = Field(64, ge=MIN_IMAGE_SIZE, le=MAX_IMAGE_SIZE, multiple_of=8)
    test_fraction: StrictFloat = Field(0.2, ge=0.01, le=0.9)
    # The generation gate and select_best choose on val, never on test: val is required.
    val_fraction: StrictFloat = Field(0.1, ge=0.01, le=0.5)
    # Prepare warns when val holds fewer items: decisions made on it are noisy.
    min_val_items: StrictInt = Field(50, ge=0, le=10**9)
    labeled_fraction: StrictFloat = Field(0.05, ge=0.001, le=0.99)
    # 0 keeps every item; a positive number keeps a stratified subset (tiny test runs).
    subset: StrictInt = Field(0, ge=0, le=10**9)
    # Where the folders and manifest sources read images (relative to the project root);
    # the prepare stage depends on it in dvc.yaml, so DVC reruns it when the data changes.
    raw_dir: StrictStr = "data/raw"
    # source 'manifest': the CSV or Parquet file (relative to the project root).
    manifest: StrictStr | None = None
    # Class names in index order; None: the sorted folder names or distinct labels.
    classes: tuple[StrictStr, ...] | None = None
    # Let manifest paths resolve outside raw_dir (such files are not tracked with it).
    allow_outside_root: StrictBool = False
    # Per-channel (R, G, B) normalisation of the inputs, in 0..1 pixel units; "auto" is
    # ImageNet's for every source (`selftrain.normalization`).
    mean: ChannelStats = "auto"
    std: ChannelStats = "auto"
    # source 'digits-mosaic' (the embedded multilabel default): how the mosaics are built.
    mosaic: MosaicConfig = Field(default_factory=MosaicConfig)

    @field_validator("image_size", mode="before")
    @classmethod
    def _size_or_auto(cls, value: Any) -> Any:
        return int_or_auto(value, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)

    @field_validator("mean", "std", mode="before")
    @classmethod
    def _channel_values_or_auto(cls, value: Any) -> Any:
        # One message for both branches of the union (pydantic would report each).
        if value == "auto":
            return value
        numbers = isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        )
        if not numbers or len(value) != INPUT_CHANNELS:
            raise invalid(
                f"expected 'auto' or a list of {INPUT_CHANNELS} numbers (one per R, G, B channel, "
                f"in 0..1 pixel units), got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _sources_agree(self) -> DataConfig:
        if not self.raw_dir.strip():
            raise invalid("must not be empty", "raw_dir")
        if self.source == "manifest" and not self.manifest:
            raise invalid("required when data.source is 'manifest'", "manifest")
        if self.manifest is not None and not self.manifest.lower().endswith(MANIFEST_SUFFIXES):
            raise invalid(f"expected a {' or '.join(MANIFEST_SUFFIXES)} file, got {self.manifest!r}", "manifest")
        if self.subset and self.source != "digits":
            raise invalid("only the digits source takes a subset; set it to 0", "subset")
        # Both are shares of the non-test pool and val is drawn first; the unlabeled
        # pool is what remains, and self-training needs one.
        if self.source in ("digits", "digits-mosaic") and self.labeled_fraction + self.val_fraction >= 1:
            raise invalid(
                f"labeled_fraction ({self.labeled_fraction}) + val_fraction ({self.val_fraction}) must be "
                "below 1: both are shares of the non-test pool and the rest is the unlabeled pool",
                "labeled_fraction",
            )
        _check_channel_stats(self.mean, self.std)
        if self.classes is not None:
            if self.source in ("digits", "digits-mosaic"):
                raise invalid(f"the {self.source} source names its own classes; set it to null", "classes")
            _check_class_names(self.classes)
        return self


def _check_channel_stats(mean: Any, std: Any) -> None:
    if mean != "auto" and not all(0.0 <= m <= 1.0 for m in mean):
        raise invalid(f"values are fractions of the 0..255 pixel range, in [0, 1]; got {list(mean)}", "mean")
    if std != "auto" and not all(s > 0 for s in std):
        raise invalid(f"every value must be > 0, got {list(std)}", "std")
    if (mean == "auto") != (std == "auto"):
        raise invalid("give both data.mean and data.std, or set both to 'auto'", "mean" if mean == "auto" else "std")


def _check_class_names(names: tuple[str, ...]) -> None:
    if len(names) < 2:
        raise invalid(f"need at least two class names, got {list(names)}", "classes")
    for i, name in enumerate(names):
        if not name.strip():
            raise invalid("class names must not be empty", f"classes[{i}]")
    seen = set()
    for i, name in enumerate(names):
        if name in seen:
            raise invalid(f"duplicate class name {name!r}", f"classes[{i}]")
        seen.add(name)
