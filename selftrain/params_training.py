"""The training sections of params.yaml: teacher, student, each generation, and `train`
(mixed precision, memory format); each checks its architecture and weights keys."""

from __future__ import annotations

import re
import typing
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator, model_validator
from pydantic.dataclasses import dataclass

from selftrain.params_fields import (
    SECTION,
    batch_size_field,
    depth_field,
    ema_decay_field,
    epochs_field,
    int_or_auto,
    invalid,
    lr_field,
    rate_field,
    unlabeled_ratio_field,
    unlabeled_threshold_field,
    unlabeled_weight_field,
    width_field,
)

# What a training stage learns from the unlabeled pool besides its labels: nothing,
# which of 4 rotations was applied (SESEMI), or weak/strong-view agreement (FixMatch).
Unlabeled = Literal["none", "rotation", "consistency"]
UNLABELED_CHOICES: tuple[str, ...] = typing.get_args(Unlabeled)
# scratch: a student starts from fresh weights (the paper); teacher: from its teacher's.
StudentInit = Literal["scratch", "teacher"]
# auto: bf16 on CUDA, off on the CPU.
Amp = Literal["auto", "bf16", "off"]
# student.epochs "auto": passes over the round's pseudo-labelled rows per task. Multilabel
# students under-train at the multiclass count: at 5% labeled mosaics, behind a 30-pass
# teacher 20 epochs lost 14 to 20 points of test mAP to it and 60 gained 3 to 5; behind
# the 90-pass teacher 60 lose 1 to 2 points and 120 gain (BENCHMARKS.md "Multilabel").
# Multiclass: 15 with students of widths 16/24/32 measured level with 20 at 24/32/40
# (paired -0.11 points at 2% and at 5% labels, 5 seeds) and brought `make run` under
# 5 minutes (BENCHMARKS.md "Seventh session").
STUDENT_EPOCHS_AUTO = {"multiclass": 15, "multilabel": 120}
# teacher.epochs "auto": passes over the unlabeled pool (over the labeled rows when
# teacher.unlabeled is none) per task. The multilabel teacher is short of steps at the
# multiclass count: 30 passes are ~425 steps at 5% labeled mosaics, and more labels
# (a smaller pool) made it worse (BENCHMARKS.md "Multilabel"). Multiclass: 40 passes
# against 30 lifted the best generation on the 5-seed digits benchmark (BENCHMARKS.md
# "Seventh session"); 40 is what `make run`'s 5 minutes allow beside the students.
TEACHER_EPOCHS_AUTO = {"multiclass": 40, "multilabel": 90}
RESNET_S3 = "resnet-s3"
# resnet-s3 teacher's size when params.yaml leaves it out.
TEACHER_WIDTH, TEACHER_DEPTH = 16, 1
# Weights files live here: dvc.yaml declares the folder a dep of both training stages
# (DVC cannot declare a dep that params may leave null).
WEIGHTS_DIR = "weights"
# torchvision's weight enums, e.g. ResNet18_Weights.IMAGENET1K_V1 (downloaded: needs internet).
WEIGHTS_ENUM = re.compile(r"^[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*_Weights\.[A-Z0-9_]+$")


def architecture_message(arch: str) -> str | None:
    """Why `arch` is not an architecture (None: it is one). torchvision is imported only
    for a named architecture, so loading params stays light for the other stages."""
    if arch == RESNET_S3:
        return None
    from selftrain.architectures import architecture_error

    return architecture_error(arch)


def weights_message(weights: str) -> str | None:
    """Why `weights` is not a weights source (None: it is a torchvision enum name or a
    path inside weights/; absolute paths are checked against the project when loaded)."""
    if WEIGHTS_ENUM.match(weights) or PurePosixPath(weights).is_absolute():
        return None
    parts = PurePosixPath(weights).parts
    if len(parts) < 2 or parts[0] != WEIGHTS_DIR or ".." in parts:
        return (
            f"expected a file or model directory under {WEIGHTS_DIR}/ (dvc.yaml tracks that folder "
            f"for the training stages) or a torchvision weights name like ResNet18_Weights.IMAGENET1K_V1, "
            f"got {weights!r}"
        )
    return None


def check_model_keys(arch: str, width: int | None, depth: int | None, weights: str | None, required: bool) -> None:
    """arch names an architecture; width/depth only for resnet-s3 (and, when `required`,
    given for it); weights is a valid source."""
    message = architecture_message(arch)
    if message:
        raise invalid(message, "arch")
    for key, value in (("width", width), ("depth", depth)):
        if arch != RESNET_S3 and value is not None:
            raise invalid(f"only for arch {RESNET_S3!r}; {arch} has its own size: remove it", key)
        if arch == RESNET_S3 and required and value is None:
            raise invalid("required key is missing", key)
    if weights is not None:
        message = weights_message(weights)
        if message:
            raise invalid(message, "weights")


def check_rotation(arch: str, unlabeled: str, key: str = "unlabeled", which: str | None = None) -> None:
    """The rotation loss only with resnet-s3; `which` names the model in the message
    (default: `with arch <arch>`), `key` the unlabeled key it reports."""
    if unlabeled == "rotation" and arch != RESNET_S3:
        which = which or f"with arch {arch}"
        raise invalid(f"'rotation' reads resnet-s3's pooled features; {which} use 'none' or 'consistency'", key)


@dataclass(frozen=True, config=SECTION)
class TeacherConfig:
    """Generation 0: trained on labeled rows (and, by `unlabeled`, on the unlabeled pool)."""

    # resnet-s3 (sized by width/depth) or a torchvision classification model name.
    arch: StrictStr = RESNET_S3
    # resnet-s3 only; 16 and 1 when left out.
    width: StrictInt | None = width_field(None)
    depth: StrictInt | None = depth_field(None)
    # Start from these weights (a file or selftrain model directory under weights/, or a
    # torchvision weights name, which downloads); the head is replaced when the class
    # count differs. With epochs 0 the model is imported as generation 0 untrained.
    weights: StrictStr | None = None
    dropout: StrictFloat = rate_field(0.1)
    drop_path: StrictFloat = rate_field(0.0)
    input_noise: StrictBool = True
    # With `unlabeled` other than none, an epoch is one pass over the unlabeled pool;
    # "auto": TEACHER_EPOCHS_AUTO[task] (Params.teacher_epochs resolves it).
    epochs: Annotated[StrictInt, epochs_field(..., low=0)] | Literal["auto"] = "auto"
    batch_size: StrictInt = batch_size_field(32)
    lr: StrictFloat = lr_field(0.05)
    # none | rotation | consistency: the auxiliary loss on unlabeled images.
    unlabeled: Unlabeled = "none"
    # Weight of that loss beside the supervised one.
    unlabeled_weight: StrictFloat = unlabeled_weight_field()
    # consistency: the weak view's confidence needed before its label trains the strong view.
    unlabeled_threshold: StrictFloat = unlabeled_threshold_field()
    # Unlabeled images per labeled image in a batch.
    unlabeled_ratio: StrictFloat = unlabeled_ratio_field()
    # Exponential moving average of the weights, per step; the average is what is saved. 0 = off.
    ema_decay: StrictFloat = ema_decay_field()

    @field_validator("epochs", mode="before")
    @classmethod
    def _epochs_or_auto(cls, value: Any) -> Any:
        auto = ", ".join(f"{epochs} {task}" for task, epochs in TEACHER_EPOCHS_AUTO.items())
        return int_or_auto(value, 0, 10_000, f" ({auto})")

    @model_validator(mode="after")
    def _arch_and_weights(self) -> TeacherConfig:
        check_model_keys(self.arch, self.width, self.depth, self.weights, required=False)
        check_rotation(self.arch, self.unlabeled)
        if self.epochs == 0 and self.weights is None:
            raise invalid("0 imports teacher.weights without training; set weights, or epochs >= 1", "epochs")
        return self

    def size(self) -> tuple[int | None, int | None]:
        """(width, depth): resnet-s3's with their defaults, (None, None) for another arch."""
        if self.arch != RESNET_S3:
            return None, None
        return (
            TEACHER_WIDTH if self.width is None else self.width,
            TEACHER_DEPTH if self.depth is None else self.depth,
        )


@dataclass(frozen=True, config=SECTION)
class StudentConfig:
    """Noise and schedule shared by every student generation."""

    # scratch: fresh weights (the paper); teacher: the teacher's weights where names and
    # shapes match (the rest, e.g. another architecture's layers, starts fresh and is logged).
    init: StudentInit = "scratch"
    dropout: StrictFloat = rate_field(0.3)
    drop_path: StrictFloat = rate_field(0.2)
    input_noise: StrictBool = True
    # Passes over the round's pseudo-labelled rows; "auto": STUDENT_EPOCHS_AUTO[task]
    # (Params.student_epochs resolves it, and a generation's own `epochs` wins).
    epochs: Annotated[StrictInt, epochs_field(...)] | Literal["auto"] = "auto"
    # Labeled rows per batch; pseudo-labelled rows per batch = batch_size * batch_ratio.
    batch_size: StrictInt = batch_size_field(32)
    batch_ratio: StrictFloat = Field(3.0, gt=0)
    lr: StrictFloat = lr_field(0.05)
    # As for the teacher; the unlabeled images are the round's whole pool.
    unlabeled: Unlabeled = "none"
    unlabeled_weight: StrictFloat = unlabeled_weight_field()
    unlabeled_threshold: StrictFloat = unlabeled_threshold_field()
    unlabeled_ratio: StrictFloat = unlabeled_ratio_field()
    ema_decay: StrictFloat = ema_decay_field()
    # The pseudo-labelled part of the loss ramps linearly from 0 to full weight over
    # this many epochs (per step); 0 = full weight from the first step.
    pseudo_rampup_epochs: StrictInt = Field(0, ge=0, le=10_000)
    # Epochs on the labeled rows alone after the student's training, at finetune_lr
    # (the Noisy Student paper's optional fine-tune). 0 = none.
    finetune_epochs: StrictInt = Field(0, ge=0, le=10_000)
    finetune_lr: StrictFloat = lr_field(0.005)

    @field_validator("epochs", mode="before")
    @classmethod
    def _epochs_or_auto(cls, value: Any) -> Any:
        auto = ", ".join(f"{epochs} {task}" for task, epochs in STUDENT_EPOCHS_AUTO.items())
        return int_or_auto(value, 1, 10_000, f" ({auto})")


@dataclass(frozen=True, config=SECTION)
class GenerationConfig:
    """One student generation. `teacher` is spelled out because DVC cannot compute k-1."""

    teacher: StrictInt
    # As teacher.arch; width and depth are required for resnet-s3 and refused otherwise.
    arch: StrictStr = RESNET_S3
    width: StrictInt | None = width_field(None)
    depth: StrictInt | None = depth_field(None)
    # As teacher.weights: this student's starting point (not with student.init teacher).
    weights: StrictStr | None = None
    # Optional overrides of student.epochs / student.lr for this generation only.
    epochs: StrictInt | None = epochs_field(None)
    lr: StrictFloat | None = lr_field(None)

    @model_validator(mode="after")
    def _arch_and_weights(self) -> GenerationConfig:
        check_model_keys(self.arch, self.width, self.depth, self.weights, required=True)
        return self


@dataclass(frozen=True, config=SECTION)
class TrainConfig:
    """How training uses the hardware (both training stages); neither changes the data."""

    # Mixed precision: auto = bf16 under CUDA, off on the CPU (bf16 on a CPU is allowed
    # but rarely faster).
    amp: Amp = "auto"
    # NHWC memory layout for convolutions: auto = on under CUDA.
    channels_last: Literal["auto"] | StrictBool = "auto"

    @field_validator("channels_last", mode="before")
    @classmethod
    def _auto_or_bool(cls, value: Any) -> Any:
        # One message for both branches of the union (pydantic would report each).
        if value == "auto" or isinstance(value, bool):
            return value
        raise invalid(f"expected 'auto', true or false, got {value!r}")

    def resolved(self, cuda: bool) -> tuple[bool, bool]:
        """(bf16 autocast on, channels_last on) for a run on CUDA or not."""
        amp = self.amp == "bf16" or (self.amp == "auto" and cuda)
        channels_last = cuda if self.channels_last == "auto" else self.channels_last
        return amp, channels_last


__all__ = [
    "RESNET_S3",
    "UNLABELED_CHOICES",
    "WEIGHTS_DIR",
    "GenerationConfig",
    "StudentConfig",
    "TeacherConfig",
    "TrainConfig",
]
