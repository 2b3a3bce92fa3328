"""Per-channel input normalisation: ``data.mean`` / ``data.std`` resolved for the pipeline.

Values are in 0..1 pixel units (torchvision's convention); DALI normalises uint8 pixels,
so `Normalization.pixel_mean` / `pixel_std` scale them to 0..255. "auto" is ImageNet's
statistics for every source: what the digits pipeline has always used, and what weights
trained on ImageNet (most of torchvision's) expect. Data with other statistics trained
from scratch gives its own lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from selftrain.config import DataConfig
from selftrain.errors import ConfigError


@dataclass(frozen=True)
class Normalization:
    """One mean and one std per channel, in 0..1 pixel units."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def pixel_mean(self) -> list[float]:
        return [255.0 * m for m in self.mean]

    @property
    def pixel_std(self) -> list[float]:
        return [255.0 * s for s in self.std]


IMAGENET = Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def resolve_normalization(config: DataConfig, channels: int) -> Normalization:
    """The normalisation `config` asks for, for images of `channels` channels.

    Raises:
        ConfigError: a list's length differs from `channels` (names ``data.mean``/``data.std``).
    """
    chosen = IMAGENET if config.mean == "auto" else Normalization(
        tuple(float(m) for m in config.mean), tuple(float(s) for s in config.std)
    )
    for key, values in (("data.mean", chosen.mean), ("data.std", chosen.std)):
        if len(values) != channels:
            raise ConfigError(f"{key}: {len(values)} values for images of {channels} channels")
    return chosen
