"""The architecture registry: `resnet-s3` or any torchvision classification model, by name.

`build_model` makes the module of a generation and says which of its noise knobs the
architecture really has. torchvision builders pass unknown keyword arguments on to
their class, and some classes swallow them in `**kwargs` (MobileNetV3 takes
`stochastic_depth_prob` and ignores it), so a knob counts only when the class's own
`__init__` names it. The data pipeline always yields RGB (DALI decodes grey images to
3 identical channels), so every architecture takes (B, 3, S, S) as torchvision's do.
"""

from __future__ import annotations

import functools
import inspect

import torch
from torch import nn

from selftrain.models import create_model
from selftrain.params_training import RESNET_S3

# Our knob -> the keyword torchvision's classes use for it.
KNOBS = {"dropout": "dropout", "drop_path": "stochastic_depth_prob"}
# Parameter counts that compare students with teachers use this many classes: the class
# count is known only once the data is prepared, and it changes every model's head alike.
NOMINAL_CLASSES = 10


@functools.cache
def named_architectures() -> tuple[str, ...]:
    """torchvision's classification models (not detection, segmentation, video...)."""
    import torchvision  # only for a named architecture: resnet-s3 stages skip its ~1.5 s import

    return tuple(torchvision.models.list_models(module=torchvision.models))


def architecture_error(arch: str) -> str | None:
    """Why `arch` is not an architecture, or None when it is one."""
    if arch == RESNET_S3 or arch in named_architectures():
        return None
    return (
        f"unknown architecture {arch!r}; expected {RESNET_S3!r} or a torchvision classification "
        f"model ({', '.join(named_architectures()[:6])}, ...; torchvision.models.list_models())"
    )


def _build_named(arch: str, num_classes: int, **knobs: float) -> nn.Module:
    import torchvision

    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **knobs)


@functools.cache
def supported_knobs(arch: str) -> frozenset[str]:
    """Our noise knobs (`dropout`, `drop_path`) that `arch`'s class takes by name."""
    if arch == RESNET_S3:
        return frozenset(KNOBS)
    model = _meta_build(arch)
    accepted = inspect.signature(type(model).__init__).parameters
    return frozenset(ours for ours, theirs in KNOBS.items() if theirs in accepted)


def _meta_build(arch: str) -> nn.Module:
    """The module without allocating its weights where torchvision allows (regnets
    compute their widths with tensors, which the meta device cannot)."""
    try:
        with torch.device("meta"):
            return _build_named(arch, NOMINAL_CLASSES)
    except NotImplementedError:
        return _build_named(arch, NOMINAL_CLASSES)


@functools.cache
def nominal_parameters(arch: str, width: int | None = None, depth: int | None = None) -> int:
    """Parameters of `arch` with a NOMINAL_CLASSES head (width/depth for resnet-s3)."""
    if arch == RESNET_S3:
        with torch.device("meta"):
            model = create_model(width, depth, 0.0, 0.0, NOMINAL_CLASSES)
    else:
        model = _meta_build(arch)
    return sum(p.numel() for p in model.parameters())


def build_model(
    arch: str, width: int | None, depth: int | None, dropout: float, drop_path: float, num_classes: int
) -> tuple[nn.Module, dict[str, bool]]:
    """The module of a generation, and for each noise knob whether the module applies it.

    A knob the architecture lacks is reported False (when its rate is above 0), so the
    caller can log it and record it with the model; a rate of 0 is "applied" trivially.
    """
    rates = {"dropout": dropout, "drop_path": drop_path}
    knobs = supported_knobs(arch)
    if arch == RESNET_S3:
        model = create_model(width, depth, dropout, drop_path, num_classes)
    else:
        model = _build_named(arch, num_classes, **{KNOBS[k]: rates[k] for k in knobs})
    return model, {k: k in knobs or rates[k] == 0.0 for k in rates}


def classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    """State-dict prefixes of the final classifier (the last `nn.Linear`, or the last
    1x1 convolution of SqueezeNet-style heads): what a class-count change replaces."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            last = name
    return () if last is None else (f"{last}.",)


__all__ = [
    "NOMINAL_CLASSES",
    "RESNET_S3",
    "architecture_error",
    "build_model",
    "classifier_prefixes",
    "named_architectures",
    "nominal_parameters",
    "supported_knobs",
]
