"""Residual CNNs (resnet-s3), and the safe checkpoints of every model.

A checkpoint is a directory with `model.pt` (a state dict, loaded with
`weights_only=True`) and `model.json` (architecture, classes, generation):
never a pickled object. Architectures other than resnet-s3 come from
`selftrain.architectures`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from selftrain.atomic import atomic_dir
from selftrain.config import Params
from selftrain.data import Dataset, input_size
from selftrain.distributed import strip_ddp_prefix
from selftrain.errors import ModelError

WEIGHTS_FILE = "model.pt"
HEADER_FILE = "model.json"


@dataclass(frozen=True)
class ModelHeader:
    """What a checkpoint is: enough to rebuild the module and check it fits."""

    architecture: str
    # resnet-s3's size; None for a torchvision architecture.
    width: int | None
    depth: int | None
    num_classes: int
    class_names: tuple[str, ...]
    image_size: int
    generation: int
    num_parameters: int
    # Logits are divided by this before the softmax (fitted on val; 1.0 = uncalibrated).
    temperature: float = 1.0
    # The weights file or model directory training started from (or, with epochs 0,
    # the imported model); None: trained from scratch.
    source: str | None = None
    # Per noise knob (dropout, drop_path): whether the architecture applied it.
    noise_applied: dict[str, bool] | None = None
    # params.task it was trained for: softmax (multiclass) or per-class sigmoid (multilabel)
    # outputs; headers written before the task existed are multiclass.
    task: str = "multiclass"


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """conv (no bias), batch norm, then ReLU unless `relu` is False.

    The layout, state-dict keys and init order of torchvision's `Conv2dNormActivation`,
    written here so that a resnet-s3 stage does not import torchvision: its package import
    (torch._dynamo through torchvision.ops) costs ~1.5 s in each of the loop's stages.
    """
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DropPath(nn.Module):
    """Stochastic depth per row: zero a sample's residual branch with probability `p`
    while training, scale the kept ones by 1 / (1 - p). The same draws as torchvision's
    `StochasticDepth(p, mode="row")` (one Bernoulli per row, in that order)."""

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        noise = torch.empty([x.shape[0]] + [1] * (x.ndim - 1), dtype=x.dtype, device=x.device)
        noise.bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ResidualBlock(nn.Module):
    """conv-bn-relu, conv-bn, plus a (projected) shortcut; the residual branch is
    dropped per sample with probability `drop_path` while training (stochastic depth)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, drop_path: float):
        super().__init__()
        self.branch = nn.Sequential(
            conv_bn(in_ch, out_ch, 3, stride=stride),
            conv_bn(out_ch, out_ch, 3, relu=False),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and in_ch == out_ch
            else conv_bn(in_ch, out_ch, 1, stride=stride, relu=False)
        )
        self.drop_path = DropPath(drop_path)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shortcut(x) + self.drop_path(self.branch(x)))


class ResNetS3(nn.Module):
    """Three stages of `depth` residual blocks at widths (w, 2w, 4w), strides (1, 2, 2)."""

    def __init__(self, width: int, depth: int, dropout: float, drop_path: float, num_classes: int):
        super().__init__()
        widths = (width, 2 * width, 4 * width)
        num_blocks = 3 * depth
        blocks: list[nn.Module] = []
        in_ch = width
        for stage, out_ch in enumerate(widths):
            for i in range(depth):
                index = stage * depth + i
                # Deeper blocks are dropped more often (linear decay rule of Huang et al.).
                rate = drop_path * index / max(num_blocks - 1, 1)
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(ResidualBlock(in_ch, out_ch, stride, rate))
                in_ch = out_ch
        self.stem = conv_bn(3, width, 3)
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(in_ch, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 3, S, S) -> logits (B, num_classes)
        return self.head(self.blocks(self.stem(x)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 3, S, S) -> pooled features (B, 4w), what the classifier sees
        return self.head[:2](self.blocks(self.stem(x)))

    @property
    def feature_dim(self) -> int:
        return self.head[-1].in_features


class Calibrated(nn.Module):
    """A classifier whose logits are divided by a fitted temperature (inference only).

    The temperature is a buffer, so it is part of the inference fingerprint; the
    checkpoint stores the bare network's weights and the temperature in its header.
    """

    def __init__(self, net: nn.Module, temperature: float = 1.0):
        super().__init__()
        self.net = net
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) / self.temperature


def create_model(
    width: int, depth: int, dropout: float, drop_path: float, num_classes: int
) -> ResNetS3:
    return ResNetS3(width, depth, dropout, drop_path, num_classes)


def header_for(
    model: nn.Module,
    params: Params,
    dataset: Dataset,
    gen: int,
    temperature: float = 1.0,
    source: str | None = None,
    noise_applied: dict[str, bool] | None = None,
) -> ModelHeader:
    width, depth = params.model_size(gen)
    class_names = dataset.class_names
    return ModelHeader(
        architecture=params.arch(gen),
        width=width,
        depth=depth,
        num_classes=len(class_names),
        class_names=tuple(class_names),
        image_size=input_size(dataset, params.data),
        generation=gen,
        num_parameters=count_parameters(model),
        temperature=float(temperature),
        source=source,
        noise_applied=noise_applied,
        task=params.task,
    )


def bare_network(model: nn.Module) -> tuple[nn.Module, float]:
    """The network without its temperature, and the temperature (1.0 when not `Calibrated`)."""
    if isinstance(model, Calibrated):
        return model.net, float(model.temperature)
    return model, 1.0


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_model(model: nn.Module, header: ModelHeader, out_dir: str | Path) -> None:
    """Write weights and header into `out_dir` atomically (the whole directory swaps).

    A `Calibrated` model is saved as its bare network; the temperature is in the header.
    """
    model, _ = bare_network(model)
    with atomic_dir(out_dir) as tmp:
        torch.save(model.state_dict(), tmp / WEIGHTS_FILE)
        (tmp / HEADER_FILE).write_text(json.dumps(asdict(header), indent=2) + "\n")


def read_header(model_dir: str | Path) -> ModelHeader:
    path = Path(model_dir) / HEADER_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: no model header; is {model_dir} a selftrain model?") from None
    try:
        raw["class_names"] = tuple(raw["class_names"])
        return ModelHeader(**raw)
    except (KeyError, TypeError) as exc:
        raise ModelError(f"{path}: malformed model header: {exc}") from None


def load_model(
    model_dir: str | Path, expect_class_names: tuple[str, ...] | None = None, expect_task: str | None = None
) -> tuple[Calibrated, ModelHeader]:
    """Rebuild a model in eval mode from its directory, its logits scaled by the header's
    temperature; its noise is irrelevant at inference (eval mode turns dropout and
    stochastic depth off), so it is built without."""
    # Imported here: the registry builds resnet-s3 from this module.
    from selftrain.architectures import architecture_error, build_model

    header = read_header(model_dir)
    error = architecture_error(header.architecture)
    if error:
        raise ModelError(f"{model_dir}: checkpoint architecture: {error}")
    if expect_class_names is not None and tuple(expect_class_names) != header.class_names:
        raise ModelError(
            f"{model_dir}: checkpoint has {header.num_classes} classes {list(header.class_names)}, "
            f"the data has {len(expect_class_names)} classes {list(expect_class_names)}"
        )
    if expect_task is not None and expect_task != header.task:
        # Its outputs would be read through the wrong activation (softmax vs sigmoid).
        raise ModelError(
            f"{model_dir}: checkpoint was trained for task {header.task}, params.yaml says task {expect_task}; "
            "retrain it (dvc repro) or set task back"
        )
    model, _ = build_model(header.architecture, header.width, header.depth, 0.0, 0.0, header.num_classes)
    weights_path = Path(model_dir) / WEIGHTS_FILE
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    try:
        # A state dict saved from a DDP wrapper loads too (its keys start with "module.").
        model.load_state_dict(strip_ddp_prefix(state))
    except RuntimeError as exc:
        raise ModelError(
            f"{weights_path}: weights do not fit the header's architecture "
            f"({header.architecture}, width={header.width}, depth={header.depth}, "
            f"classes={header.num_classes}): "
            f"{str(exc).splitlines()[0]}"
        ) from None
    return Calibrated(model, header.temperature).eval(), header
