"""The schema of params.yaml: one frozen pydantic dataclass per section, with bounds and choices.

Types are strict (an integer key refuses 2.5, "3" and true; a number key takes 2 and
2.5), unknown keys are refused (``extra="forbid"``), bounds are `Field` constraints,
choices are `Literal`s, and checks across keys are validators that raise `invalid`
naming the key. `selftrain.config` loads params.yaml against `Params` and turns
pydantic's errors into one `ConfigError` naming the key path; `selftrain.schema_file`
writes the same schema as JSON for editors. The training sections (teacher, student,
generations, train) are in `selftrain.params_training`, the data section in
`selftrain.params_data`, the fields and the error every section shares in
`selftrain.params_fields`; `Params` brings them together here.

Sections are pydantic *dataclasses*, so they stay frozen dataclasses for their callers
(`dataclasses.replace` works and re-validates; assignment raises `FrozenInstanceError`).
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Literal, Mapping

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from selftrain.errors import ConfigError
from selftrain.params_data import DataConfig
from selftrain.params_fields import SECTION, batch_size_field, invalid, positive_number_auto_or_none
from selftrain.params_training import (
    RESNET_S3,
    STUDENT_EPOCHS_AUTO,
    TEACHER_EPOCHS_AUTO,
    GenerationConfig,
    StudentConfig,
    TeacherConfig,
    TrainConfig,
    check_rotation,
)

Device = Literal["auto", "gpu", "cpu"]
TaskRunner = Literal["thread", "dask"]
# The out-of-distribution score infer writes per row (selftrain/ood.py says what each is).
OodScore = Literal["max_prob", "energy", "mahalanobis", "cosine"]
# infer.ood_score: a score, or "auto" (`selftrain.ood.score_kind` resolves it per task and model).
OodScoreSetting = Literal[("auto", *typing.get_args(OodScore))]
# auto: NCCL when training on GPUs, else gloo.
Backend = Literal["auto", "gloo", "nccl"]
# multiclass: one softmax label per image; multilabel: a set of labels, one sigmoid per class.
Task = Literal["multiclass", "multilabel"]
# Training geometry of noised images: pad_crop (pad, crop back: a translation) or
# random_resized_crop (a random area and aspect, resized); auto picks by architecture
# (`selftrain.augment.resolve_geometry`).
Geometry = Literal["auto", "pad_crop", "random_resized_crop"]
DEVICE_CHOICES: tuple[str, ...] = typing.get_args(Device)
TASK_RUNNER_CHOICES: tuple[str, ...] = typing.get_args(TaskRunner)
OOD_SCORE_CHOICES: tuple[str, ...] = typing.get_args(OodScore)
BACKEND_CHOICES: tuple[str, ...] = typing.get_args(Backend)
TASK_CHOICES: tuple[str, ...] = typing.get_args(Task)
GEOMETRY_CHOICES: tuple[str, ...] = typing.get_args(Geometry)
SECTIONS = (
    "data", "multilabel", "augment", "teacher", "student", "train", "optim", "infer", "loop", "distributed", "calibration",
)  # fmt: skip

@dataclass(frozen=True, config=SECTION)
class MultilabelConfig:
    """`multilabel`: the decision thresholds of a task-multilabel run's sigmoid outputs.

    Infer decides each pool image's predicted label set at them (the set refine starts
    from), and evaluate its F1 and exact match; mAP does not depend on them. A section
    of its own, so that changing them reruns infer and evaluate and never a multiclass
    run's stages (refine.threshold is the multiclass confidence filter).
    """

    threshold: StrictFloat = Field(0.5, gt=0.0, lt=1.0)
    # Per class name, overriding `threshold` (checked against the class names by the
    # stages that read them: `selftrain.multilabel_predictions.decision_thresholds`).
    class_thresholds: dict[StrictStr, StrictFloat | StrictInt] = Field(default_factory=dict)


@dataclass(frozen=True, config=SECTION)
class AugmentConfig:
    """How the DALI pipeline noises training inputs (the student's input noise)."""

    device: Device = "auto"
    num_ops: StrictInt = Field(2, ge=0, le=14)
    # RandAugment magnitude bin in [0, 30] (DALI's default 31 bins).
    magnitude: StrictInt = Field(9, ge=0, le=30)
    # Random translation: pad by this many pixels, then crop back to image_size.
    crop_padding: StrictInt = Field(2, ge=0, le=64)
    flip: StrictBool = False
    num_threads: StrictInt = Field(2, ge=1, le=64)
    # How a noised training image is framed: pad_crop (translation by crop_padding) or
    # random_resized_crop; auto: pad_crop for resnet-s3, random_resized_crop for a
    # named torchvision architecture.
    geometry: Geometry = "auto"
    # Cutout: erase a square of this share of the side at a random place (0 = off).
    cutout: StrictFloat = Field(0.0, ge=0.0, lt=1.0)
    # The strong view of consistency training (FixMatch): RandAugment at this magnitude
    # (null = `magnitude`) plus cutout of this share of the side.
    strong_magnitude: StrictInt | None = Field(None, ge=0, le=30)
    strong_cutout: StrictFloat = Field(0.0, ge=0.0, lt=1.0)


# calibration.prior_std's default, and auto's value on a small val split: of the priors tried
# on make run's project (none, 1, 0.5, 0.25), the lowest test NLL at every val size
# (benchmarks/temperature_small_val.py); on 40 models of 5 seeds with 144 val items, 0.25-0.5
# gave the lowest mean test NLL and none the one blow-up, T = 0.16 from a single val error
# (benchmarks/calibration_pooled.py --refit-prior-std, BENCHMARKS.md "Tenth session").
DEFAULT_PRIOR_STD = 0.25


@dataclass(frozen=True, config=SECTION)
class CalibrationConfig:
    """Temperature scaling of every trained model, fitted on the val split."""

    # Fit one temperature after each training stage; inference divides logits by it,
    # so pseudo-label confidences and thresholds are calibrated.
    enabled: StrictBool = True
    # A normal prior on log T (centred on T = 1) of this standard deviation, on every val
    # size: the MAP fit weighs it against the summed val NLL, so it holds T near 1 where
    # val has few errors to fit on (ten items, or 144 with one error) and moves a fit
    # with many by about a tenth (null: no prior). auto: DEFAULT_PRIOR_STD when val holds fewer than
    # data.min_val_items, else none (the default before the tenth session's measurement).
    prior_std: Annotated[StrictFloat, Field(gt=0.0, le=10.0)] | Literal["auto"] | None = DEFAULT_PRIOR_STD

    @field_validator("prior_std", mode="before")
    @classmethod
    def _std_auto_or_none(cls, value: Any) -> Any:
        return positive_number_auto_or_none(value, 10.0)

    def resolved_prior_std(self, val_items: int, min_val_items: int) -> float | None:
        """The prior's standard deviation for a val split of `val_items` items."""
        if self.prior_std == "auto":
            return DEFAULT_PRIOR_STD if val_items < min_val_items else None
        return self.prior_std


@dataclass(frozen=True, config=SECTION)
class OptimConfig:
    momentum: StrictFloat = Field(0.9, ge=0.0, le=0.999)
    weight_decay: StrictFloat = Field(5e-4, ge=0.0, le=1.0)


@dataclass(frozen=True, config=SECTION)
class InferConfig:
    batch_size: StrictInt = batch_size_field(256)
    # The pool is split into this many contiguous shards, each written as its own part.
    num_shards: StrictInt = Field(1, ge=1, le=100_000)
    # Read by the flow only: where it fans the shards out ("thread": this machine;
    # "dask": the cluster at dask_address or $SELFTRAIN_DASK_ADDRESS, else a local one).
    task_runner: TaskRunner = "thread"
    dask_address: StrictStr | None = None
    # The `ood_score` column of the pool and val tables. Here, not under refine.ood: infer
    # computes it, so a change reruns infer@k; refine.ood's threshold reruns refine@k only.
    ood_score: OodScoreSetting = "auto"


@dataclass(frozen=True, config=SECTION)
class DistributedConfig:
    """Data-parallel training (PyTorch DDP): how many processes train one model."""

    # World size: processes over all machines; >1 makes a train stage relaunch itself
    # under torchrun on this machine (or check the world size when torchrun started it).
    processes: StrictInt = Field(1, ge=1, le=4096)
    backend: Backend = "auto"
    # Torch intra-op threads of each training process; 0 keeps torch's default (one per
    # core). Beside DALI's threads and other jobs on a shared machine, fewer run faster.
    threads_per_process: StrictInt = Field(0, ge=0, le=1024)


@dataclass(frozen=True, config=SECTION)
class LoopConfig:
    """How the flow walks the generations: the gate, and retries of a failing stage."""

    # Student k counts as a gain when it beats its teacher's val accuracy by more than this.
    min_gain: StrictFloat = Field(0.0, ge=-1.0, le=1.0)
    # Stop after this many generations in a row without a gain.
    patience: StrictInt = Field(1, ge=1, le=1000)
    retries: StrictInt = Field(2, ge=0, le=100)
    retry_delay_seconds: StrictFloat = Field(5.0, ge=0.0, le=3600.0)
    # How long a run waits for another run holding the same workspace before failing.
    lock_timeout_seconds: StrictFloat = Field(0.0, ge=0.0, le=86_400.0)


def _require_generations(schema: dict[str, Any]) -> None:
    # `generations` validates its own absence (for the message); editors should still flag it.
    schema["properties"]["generations"].pop("default", None)
    schema["properties"]["evaluate_generations"].pop("default", None)
    schema["required"] = ["generations", "evaluate_generations"]


@dataclass(frozen=True, config=ConfigDict(extra="forbid", json_schema_extra=_require_generations))
class Params:
    """All of params.yaml; sections left out of it take their defaults."""

    seed: StrictInt = 0
    # multilabel: each image has a set of labels (`labels` column; sigmoid outputs, BCE,
    # mAP); data.source must then be digits-mosaic or a manifest with a `labels` column.
    task: Task = "multiclass"
    data: DataConfig = Field(default_factory=DataConfig)
    multilabel: MultilabelConfig = Field(default_factory=MultilabelConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    infer: InferConfig = Field(default_factory=InferConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    # Raw `refine` section; parsed by selftrain.refine (it knows the class names).
    refine: Mapping[str, Any] = Field(default_factory=dict)
    # Keys are quoted generation numbers "1".."N" in params.yaml (DVC's foreach names
    # stages infer@1.. from string keys only); ints here.
    generations: dict[int, GenerationConfig] = Field(None, validate_default=True)
    # The teacher and every generation, [0, 1, .., N]: DVC's foreach over evaluate@k.
    # Any value is compared with that list, so a wrong one is named with the expected one.
    evaluate_generations: Annotated[Any, WithJsonSchema({"type": "array", "items": {"type": "integer"}})] = None

    @field_validator(*SECTIONS, mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        # `teacher:` with nothing under it is YAML null: the section's defaults.
        return {} if value is None else value

    @field_validator("generations", mode="before")
    @classmethod
    def _quoted_contiguous_keys(cls, value: Any) -> Any:
        if not isinstance(value, Mapping) or not value:
            raise invalid('expected a mapping with quoted keys "1".."N"')
        if all(isinstance(key, int) and isinstance(g, GenerationConfig) for key, g in value.items()):
            return value  # validated before: `dataclasses.replace(params, ...)` validates again
        for key in value:
            # DVC's foreach only names stages infer@1.. from *string* keys; an int key
            # silently yields no stages at all, so we refuse it here.
            if not isinstance(key, str) or not key.isdigit():
                raise invalid(
                    f'keys must be quoted generation numbers ("1", "2", ...), '
                    f"got {key!r} of type {type(key).__name__}",
                    str(key),
                )
        expected = list(range(1, len(value) + 1))
        if sorted(int(key) for key in value) != expected:
            raise invalid(f"keys must be {[str(k) for k in expected]}, got {list(value)}")
        # A generation with nothing under it is YAML null: report its missing keys.
        return {key: {} if section is None else section for key, section in value.items()}

    @model_validator(mode="after")
    def _students_follow_teachers(self) -> Params:
        for gen in range(1, len(self.generations) + 1):
            g = self.generations[gen]
            if g.teacher != gen - 1:
                raise invalid(
                    f"the student of generation {gen - 1} teaches generation {gen}; "
                    f"expected {gen - 1}, got {g.teacher}",
                    f"generations.{gen}.teacher",
                )
            _check_not_smaller(self, gen)
            check_rotation(g.arch, self.student.unlabeled, "student.unlabeled", f"generation {gen} is {g.arch}:")
            if g.weights is not None and self.student.init == "teacher":
                raise invalid(
                    "student.init 'teacher' already says where this student starts; "
                    "remove weights or set student.init to scratch",
                    f"generations.{gen}.weights",
                )
        if self.data.source == "digits-mosaic" and self.task != "multilabel":
            raise invalid("the digits-mosaic source gives label sets: set task to multilabel", "task")
        if self.task == "multilabel" and self.data.source in ("digits", "folders"):
            raise invalid(
                f"data.source {self.data.source!r} gives one label per image; a multilabel run reads "
                "digits-mosaic or a manifest with a `labels` column",
                "task",
            )
        expected = list(range(len(self.generations) + 1))
        if self.evaluate_generations != expected:
            raise invalid(
                f"must be {expected} (the teacher and each of the {len(self.generations)} "
                f"generations), got {self.evaluate_generations!r}",
                "evaluate_generations",
            )
        return self

    @property
    def num_generations(self) -> int:
        return len(self.generations)

    def model_size(self, gen: int) -> tuple[int | None, int | None]:
        """(width, depth) of the model of generation `gen` (0 = teacher); None for a
        torchvision architecture."""
        if gen == 0:
            return self.teacher.size()
        g = self._generation(gen)
        return g.width, g.depth

    def arch(self, gen: int) -> str:
        """The architecture of generation `gen` (0 = teacher)."""
        return self.teacher.arch if gen == 0 else self._generation(gen).arch

    def weights(self, gen: int) -> str | None:
        """Where generation `gen` starts from (teacher.weights or generations.k.weights)."""
        return self.teacher.weights if gen == 0 else self._generation(gen).weights

    def teacher_epochs(self) -> int:
        """Epochs of the teacher: teacher.epochs, whose "auto" is the task's count (TEACHER_EPOCHS_AUTO)."""
        if self.teacher.epochs == "auto":
            return TEACHER_EPOCHS_AUTO[self.task]
        return self.teacher.epochs

    def student_epochs(self, gen: int) -> int:
        """Epochs of student `gen`: the generation's own, else student.epochs, whose "auto"
        is the task's count (STUDENT_EPOCHS_AUTO)."""
        own = self._generation(gen).epochs
        if own is not None:
            return own
        if self.student.epochs == "auto":
            return STUDENT_EPOCHS_AUTO[self.task]
        return self.student.epochs

    def _generation(self, gen: int) -> GenerationConfig:
        if gen not in self.generations:
            raise ConfigError(
                f"generations: no generation {gen}; params.yaml defines "
                f"{sorted(self.generations)}"
            )
        return self.generations[gen]


def _check_not_smaller(params: Params, gen: int) -> None:
    """A noisy student is at least as large as its teacher: by width and depth between
    resnet-s3s, else by parameter count (with a nominal head; `selftrain.architectures`)."""
    (arch, (width, depth)), (prev_arch, (prev_width, prev_depth)) = (
        (params.arch(k), params.model_size(k)) for k in (gen, gen - 1)
    )
    if arch == prev_arch == RESNET_S3:
        if width < prev_width or depth < prev_depth:
            raise invalid(
                f"student (width={width}, depth={depth}) is smaller than its teacher "
                f"(width={prev_width}, depth={prev_depth}); a noisy student is at least "
                "as large as its teacher",
                f"generations.{gen}",
            )
        return
    # Imported here: torchvision only when a named architecture is in play.
    from selftrain.architectures import nominal_parameters

    size, prev_size = nominal_parameters(arch, width, depth), nominal_parameters(prev_arch, prev_width, prev_depth)
    if size < prev_size:
        raise invalid(
            f"student {arch} ({size:,} parameters) is smaller than its teacher {prev_arch} "
            f"({prev_size:,}); a noisy student is at least as large as its teacher",
            f"generations.{gen}",
        )
