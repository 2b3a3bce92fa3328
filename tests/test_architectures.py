"""Architectures by name: each torchvision family builds at 32 px, trains a step, saves and
reloads safely; noise maps to its own knobs; params refuse what does not fit; amp and
channels_last resolve for the device and reach the forward pass."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torchvision.ops import StochasticDepth

from conftest import REPO_ROOT
from selftrain.architectures import RESNET_S3, build_model
from selftrain.config import AugmentConfig, OptimConfig, params_from_dict
from selftrain.errors import ConfigError
from selftrain.models import DropPath, ModelHeader, count_parameters, load_model, save_model
from selftrain.train import FitOptions, TrainSet, fit
from selftrain.trainers import hardware_options

SHIPPED = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
CLASSES = ("a", "b", "c")
FAMILIES = ["resnet18", "efficientnet_b0", "mobilenet_v3_small", "convnext_tiny"]


@pytest.fixture(scope="module")
def two_images(tmp_path_factory):
    """Two 32 px RGB images of two classes: one training step at batch 2."""
    from PIL import Image

    root = tmp_path_factory.mktemp("arch_imgs")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        path = root / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths, np.array([0, 1])


def one_step(lr: float = 0.01, **kw) -> FitOptions:
    return FitOptions(
        epochs=1, lr=lr, batch_size=2, image_size=32, seed=0,
        optim=OptimConfig(), augment=AugmentConfig(num_threads=1), input_noise=False, **kw,
    )  # fmt: skip


@pytest.mark.parametrize("arch", FAMILIES)
def test_family_trains_a_step_and_reloads_with_weights_only(arch, two_images, tmp_path):
    paths, labels = two_images
    torch.manual_seed(0)
    model, _ = build_model(arch, None, None, 0.1, 0.1, len(CLASSES))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # Batch norm over 2 images whose last stages are 1x1 gives huge gradients (efficientnet's
    # reach 1e8): a tiny rate keeps the weights finite; the test is about the path, not learning.
    history = fit(model, TrainSet.from_labels(paths, labels, len(CLASSES)), None, one_step(lr=1e-6), "cpu", arch)
    assert len(history) == 1 and history[0]["images"] == 2 and np.isfinite(history[0]["loss"])
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items()), "the step changed nothing"
    header = ModelHeader(arch, None, None, len(CLASSES), CLASSES, 32, 0, count_parameters(model))
    save_model(model, header, tmp_path / "m")
    reloaded, read = load_model(tmp_path / "m", CLASSES)  # torch.load(weights_only=True) inside
    assert read.architecture == arch and read.width is None
    saved = model.state_dict()
    assert all(torch.equal(tensor, saved[key]) for key, tensor in reloaded.net.state_dict().items())
    assert all(torch.isfinite(tensor).all() for tensor in saved.values() if tensor.is_floating_point())
    with torch.no_grad():
        assert reloaded(torch.rand(2, 3, 32, 32)).shape == (2, len(CLASSES))


@pytest.mark.parametrize(
    "arch, dropout_applied, drop_path_applied",
    [
        (RESNET_S3, True, True),
        ("resnet18", False, False),
        ("efficientnet_b0", True, True),
        ("mobilenet_v3_small", True, False),
        ("convnext_tiny", False, True),
    ],
)
def test_noise_maps_to_the_architectures_own_knobs(arch, dropout_applied, drop_path_applied):
    width, depth = (8, 1) if arch == RESNET_S3 else (None, None)
    model, applied = build_model(arch, width, depth, 0.4, 0.3, 3)
    assert applied == {"dropout": dropout_applied, "drop_path": drop_path_applied}
    dropouts = {m.p for m in model.modules() if isinstance(m, nn.Dropout)}
    depths = {m.p for m in model.modules() if isinstance(m, (StochasticDepth, DropPath))}
    assert (0.4 in dropouts) == dropout_applied
    # Rates grow with depth up to the setting (torchvision and resnet-s3 alike).
    assert (0.0 < max(depths, default=0.0) <= 0.3) == drop_path_applied


def test_a_zero_rate_counts_as_applied_for_every_architecture():
    _, applied = build_model("resnet18", None, None, 0.0, 0.0, 3)
    assert applied == {"dropout": True, "drop_path": True}


def params_with(change) -> dict:
    raw = copy.deepcopy(SHIPPED)
    change(raw)
    return raw


def named_teacher(raw, arch="resnet18"):
    raw["teacher"].update(arch=arch, width=None, depth=None, unlabeled="none")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: r["teacher"].update(arch="resnet18"), r"teacher\.width: only for arch 'resnet-s3'"),
        (lambda r: r["teacher"].update(arch="resnet99"), r"teacher\.arch: unknown architecture 'resnet99'"),
        (
            lambda r: r["generations"]["1"].update(arch="mobilenet_v3_small", depth=None),
            r"generations\.1\.width: only for arch 'resnet-s3'",
        ),
        (lambda r: r["generations"]["1"].pop("width"), r"generations\.1\.width: required key is missing"),
        (
            lambda r: (named_teacher(r), r["generations"]["1"].update(arch="mobilenet_v3_small", width=None, depth=None)),
            r"generations\.1: student mobilenet_v3_small \(1,5\d\d,\d{3} parameters\) is smaller than its "
            r"teacher resnet18 \(11,\d{3},\d{3}\)",
        ),
        (lambda r: r["teacher"].update(epochs=0), r"teacher\.epochs: 0 imports teacher\.weights without training"),
        (lambda r: r["teacher"].update(weights="model.pt"), r"teacher\.weights: expected a file or model directory under weights/"),
        (lambda r: r.update(train={"channels_last": "yes"}), r"train\.channels_last: expected 'auto', true or false"),
        (lambda r: r.update(train={"amp": "fp16"}), r"train\.amp: must be one of \['auto', 'bf16', 'off'\]"),
    ],
)
def test_params_refuse_what_does_not_fit_the_architecture(change, message):
    with pytest.raises(ConfigError, match=message):
        params_from_dict(params_with(change))


def test_rotation_needs_resnet_s3():
    raw = params_with(lambda r: (named_teacher(r), r["teacher"].update(unlabeled="rotation")))
    with pytest.raises(ConfigError, match=r"teacher\.unlabeled: 'rotation' reads resnet-s3's pooled features"):
        params_from_dict(raw)


def test_named_student_larger_than_its_teacher_is_accepted():
    def change(r):
        named_teacher(r, "mobilenet_v3_small")
        for k, arch in (("1", "efficientnet_b0"), ("2", "resnet18"), ("3", "resnet50")):
            r["generations"][k].update(arch=arch, width=None, depth=None)

    params = params_from_dict(params_with(change))
    assert [params.arch(k) for k in range(4)] == ["mobilenet_v3_small", "efficientnet_b0", "resnet18", "resnet50"]
    assert params.model_size(0) == (None, None)


def test_auto_resolves_to_off_on_the_cpu():
    params = params_from_dict(SHIPPED)
    assert params.train.amp == "auto" and params.train.channels_last == "auto"
    cpu = dataclasses.replace(params, augment=dataclasses.replace(params.augment, device="cpu"))
    assert hardware_options(cpu) == {"amp": False, "channels_last": False}
    assert params.train.resolved(cuda=True) == (True, True)
    forced = dataclasses.replace(params.train, amp="bf16", channels_last=True)
    assert forced.resolved(cuda=False) == (True, True)


class Recorder(nn.Module):
    """A tiny classifier that records, per forward, whether autocast was on and whether
    its input was in channels_last order."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 3)
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, x):
        self.seen.append((torch.is_autocast_enabled("cpu"), x.is_contiguous(memory_format=torch.channels_last)))
        return self.fc(self.conv(x).mean((2, 3)))


@pytest.mark.parametrize("amp, channels_last", [(False, False), (True, True)])
def test_amp_and_channels_last_reach_the_forward_pass_on_the_cpu(two_images, amp, channels_last):
    paths, labels = two_images
    model = Recorder()
    history = fit(model, TrainSet.from_labels(paths, labels, 3), None, one_step(amp=amp, channels_last=channels_last), "cpu", "r")
    assert np.isfinite(history[0]["loss"])
    assert model.seen == [(amp, channels_last)]
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert not model._forward_pre_hooks  # fit removes its layout hook
