"""Typed, frozen params: `params.yaml` is loaded once and validated before any work.

Every section is a frozen dataclass. Unknown keys, wrong types and out-of-range
values raise one `ConfigError` naming the key path (``teacher.epochs``) and what
is allowed. Library code receives these objects, never raw dicts.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from selftrain.errors import ConfigError

DEVICE_CHOICES = ("auto", "gpu", "cpu")
TASK_RUNNER_CHOICES = ("thread", "dask")
# auto: NCCL when training on GPUs, else gloo.
BACKEND_CHOICES = ("auto", "gloo", "nccl")
# digits: embedded; folders: data.raw_dir/labeled/<class>/...; manifest: a CSV or Parquet file.
SOURCE_CHOICES = ("digits", "folders", "manifest")
MANIFEST_SUFFIXES = (".csv", ".parquet")
# What a training stage learns from the unlabeled pool besides its labels: nothing,
# which of 4 rotations was applied (SESEMI), or weak/strong-view agreement (FixMatch).
UNLABELED_CHOICES = ("none", "rotation", "consistency")


@dataclass(frozen=True)
class DataConfig:
    source: str = "digits"
    image_size: int = 32
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    labeled_fraction: float = 0.05
    # 0 keeps every item; a positive number keeps a stratified subset (tiny test runs).
    subset: int = 0
    # Where the folders and manifest sources read images (relative to the project root);
    # the prepare stage depends on it in dvc.yaml, so DVC reruns it when the data changes.
    raw_dir: str = "data/raw"
    # source 'manifest': the CSV or Parquet file (relative to the project root).
    manifest: str | None = None
    # Class names in index order; None: the sorted folder names or distinct labels.
    classes: tuple[str, ...] | None = None
    # Let manifest paths resolve outside raw_dir (such files are not tracked with it).
    allow_outside_root: bool = False

    def validate(self, path: str) -> None:
        _choice(self.source, SOURCE_CHOICES, f"{path}.source")
        if not self.raw_dir.strip():
            raise ConfigError(f"{path}.raw_dir: must not be empty")
        if self.source == "manifest" and not self.manifest:
            raise ConfigError(f"{path}.manifest: required when {path}.source is 'manifest'")
        if self.manifest is not None and not self.manifest.lower().endswith(MANIFEST_SUFFIXES):
            raise ConfigError(
                f"{path}.manifest: expected a {' or '.join(MANIFEST_SUFFIXES)} file, got {self.manifest!r}"
            )
        if self.subset and self.source != "digits":
            raise ConfigError(f"{path}.subset: only the digits source takes a subset; set it to 0")
        if self.classes is not None:
            if self.source == "digits":
                raise ConfigError(f"{path}.classes: the digits source names its own classes; set it to null")
            _class_names(self.classes, f"{path}.classes")
        _range(self.image_size, 8, 512, f"{path}.image_size")
        _range(self.test_fraction, 0.01, 0.9, f"{path}.test_fraction")
        # The generation gate and select_best choose on val, never on test: val is required.
        _range(self.val_fraction, 0.01, 0.5, f"{path}.val_fraction")
        _range(self.labeled_fraction, 0.001, 0.99, f"{path}.labeled_fraction")
        _range(self.subset, 0, 10**9, f"{path}.subset")


@dataclass(frozen=True)
class AugmentConfig:
    """How the DALI pipeline noises training inputs (the student's input noise)."""

    device: str = "auto"
    num_ops: int = 2
    # RandAugment magnitude bin in [0, 30] (DALI's default 31 bins).
    magnitude: int = 9
    # Random translation: pad by this many pixels, then crop back to image_size.
    crop_padding: int = 2
    flip: bool = False
    num_threads: int = 2

    def validate(self, path: str) -> None:
        _choice(self.device, DEVICE_CHOICES, f"{path}.device")
        _range(self.num_ops, 0, 14, f"{path}.num_ops")
        _range(self.magnitude, 0, 30, f"{path}.magnitude")
        _range(self.crop_padding, 0, 64, f"{path}.crop_padding")
        _range(self.num_threads, 1, 64, f"{path}.num_threads")


@dataclass(frozen=True)
class TeacherConfig:
    """Generation 0: trained on labeled rows (and, by `unlabeled`, on the unlabeled pool)."""

    width: int = 16
    depth: int = 1
    dropout: float = 0.1
    drop_path: float = 0.0
    input_noise: bool = True
    # With `unlabeled` other than none, an epoch is one pass over the unlabeled pool.
    epochs: int = 40
    batch_size: int = 32
    lr: float = 0.05
    # none | rotation | consistency: the auxiliary loss on unlabeled images.
    unlabeled: str = "none"
    # Weight of that loss beside the supervised one.
    unlabeled_weight: float = 1.0
    # consistency: the weak view's confidence needed before its label trains the strong view.
    unlabeled_threshold: float = 0.95
    # Unlabeled images per labeled image in a batch.
    unlabeled_ratio: float = 3.0
    # Exponential moving average of the weights, per step; the average is what is saved. 0 = off.
    ema_decay: float = 0.0

    def validate(self, path: str) -> None:
        _model_ranges(self, path)
        _range(self.epochs, 1, 10_000, f"{path}.epochs")
        _range(self.batch_size, 1, 65_536, f"{path}.batch_size")
        _range(self.lr, 1e-8, 10.0, f"{path}.lr")
        _unlabeled_ranges(self, path)


@dataclass(frozen=True)
class StudentConfig:
    """Noise and schedule shared by every student generation."""

    dropout: float = 0.3
    drop_path: float = 0.2
    input_noise: bool = True
    epochs: int = 15
    # Labeled rows per batch; pseudo-labelled rows per batch = batch_size * batch_ratio.
    batch_size: int = 32
    batch_ratio: float = 3.0
    lr: float = 0.05
    # As for the teacher; the unlabeled images are the round's whole pool.
    unlabeled: str = "none"
    unlabeled_weight: float = 1.0
    unlabeled_threshold: float = 0.95
    unlabeled_ratio: float = 3.0
    ema_decay: float = 0.0
    # The pseudo-labelled part of the loss ramps linearly from 0 to full weight over
    # this many epochs (per step); 0 = full weight from the first step.
    pseudo_rampup_epochs: int = 0
    # Epochs on the labeled rows alone after the student's training, at finetune_lr
    # (the Noisy Student paper's optional fine-tune). 0 = none.
    finetune_epochs: int = 0
    finetune_lr: float = 0.005

    def validate(self, path: str) -> None:
        _range(self.dropout, 0.0, 0.95, f"{path}.dropout")
        _range(self.drop_path, 0.0, 0.95, f"{path}.drop_path")
        _range(self.epochs, 1, 10_000, f"{path}.epochs")
        _range(self.batch_size, 1, 65_536, f"{path}.batch_size")
        if not self.batch_ratio > 0:
            raise ConfigError(f"{path}.batch_ratio: must be > 0, got {self.batch_ratio!r}")
        _range(self.lr, 1e-8, 10.0, f"{path}.lr")
        _unlabeled_ranges(self, path)
        _range(self.pseudo_rampup_epochs, 0, 10_000, f"{path}.pseudo_rampup_epochs")
        _range(self.finetune_epochs, 0, 10_000, f"{path}.finetune_epochs")
        _range(self.finetune_lr, 1e-8, 10.0, f"{path}.finetune_lr")


@dataclass(frozen=True)
class CalibrationConfig:
    """Temperature scaling of every trained model, fitted on the val split."""

    # Fit one temperature after each training stage; inference divides logits by it,
    # so pseudo-label confidences and thresholds are calibrated.
    enabled: bool = True

    def validate(self, path: str) -> None:
        pass


@dataclass(frozen=True)
class OptimConfig:
    momentum: float = 0.9
    weight_decay: float = 5e-4

    def validate(self, path: str) -> None:
        _range(self.momentum, 0.0, 0.999, f"{path}.momentum")
        _range(self.weight_decay, 0.0, 1.0, f"{path}.weight_decay")


@dataclass(frozen=True)
class InferConfig:
    batch_size: int = 256
    # The pool is split into this many contiguous shards, each written as its own part.
    num_shards: int = 1
    # Read by the flow only: where it fans the shards out ("thread": this machine;
    # "dask": the cluster at dask_address or $SELFTRAIN_DASK_ADDRESS, else a local one).
    task_runner: str = "thread"
    dask_address: str | None = None

    def validate(self, path: str) -> None:
        _range(self.batch_size, 1, 65_536, f"{path}.batch_size")
        _range(self.num_shards, 1, 100_000, f"{path}.num_shards")
        _choice(self.task_runner, TASK_RUNNER_CHOICES, f"{path}.task_runner")


@dataclass(frozen=True)
class DistributedConfig:
    """Data-parallel training (PyTorch DDP): how many processes train one model."""

    # World size: processes over all machines; >1 makes a train stage relaunch itself
    # under torchrun on this machine (or check the world size when torchrun started it).
    processes: int = 1
    backend: str = "auto"
    # Torch intra-op threads of each training process; 0 keeps torch's default (one per
    # core). Beside DALI's threads and other jobs on a shared machine, fewer run faster.
    threads_per_process: int = 0

    def validate(self, path: str) -> None:
        _range(self.processes, 1, 4096, f"{path}.processes")
        _choice(self.backend, BACKEND_CHOICES, f"{path}.backend")
        _range(self.threads_per_process, 0, 1024, f"{path}.threads_per_process")


@dataclass(frozen=True)
class LoopConfig:
    """How the flow walks the generations: the gate, and retries of a failing stage."""

    # Student k counts as a gain when it beats its teacher's val accuracy by more than this.
    min_gain: float = 0.0
    # Stop after this many generations in a row without a gain.
    patience: int = 1
    retries: int = 2
    retry_delay_seconds: float = 5.0
    # How long a run waits for another run holding the same workspace before failing.
    lock_timeout_seconds: float = 0.0

    def validate(self, path: str) -> None:
        _range(self.min_gain, -1.0, 1.0, f"{path}.min_gain")
        _range(self.patience, 1, 1000, f"{path}.patience")
        _range(self.retries, 0, 100, f"{path}.retries")
        _range(self.retry_delay_seconds, 0.0, 3600.0, f"{path}.retry_delay_seconds")
        _range(self.lock_timeout_seconds, 0.0, 86_400.0, f"{path}.lock_timeout_seconds")


@dataclass(frozen=True)
class GenerationConfig:
    """One student generation. `teacher` is spelled out because DVC cannot compute k-1."""

    teacher: int
    width: int
    depth: int
    # Optional overrides of student.epochs / student.lr for this generation only.
    epochs: int | None = None
    lr: float | None = None

    def validate(self, path: str) -> None:
        _range(self.width, 4, 4096, f"{path}.width")
        _range(self.depth, 1, 64, f"{path}.depth")
        if self.epochs is not None:
            _range(self.epochs, 1, 10_000, f"{path}.epochs")
        if self.lr is not None:
            _range(self.lr, 1e-8, 10.0, f"{path}.lr")


@dataclass(frozen=True)
class Params:
    seed: int
    data: DataConfig
    augment: AugmentConfig
    teacher: TeacherConfig
    student: StudentConfig
    optim: OptimConfig
    infer: InferConfig
    loop: LoopConfig
    distributed: DistributedConfig
    calibration: CalibrationConfig
    # Raw `refine` section; parsed by selftrain.refine (it knows the class names).
    refine: Mapping[str, Any]
    generations: Mapping[int, GenerationConfig]

    @property
    def num_generations(self) -> int:
        return len(self.generations)

    def model_size(self, gen: int) -> tuple[int, int]:
        """(width, depth) of the model of generation `gen` (0 = teacher)."""
        if gen == 0:
            return self.teacher.width, self.teacher.depth
        if gen not in self.generations:
            raise ConfigError(
                f"generations: no generation {gen}; params.yaml defines "
                f"{sorted(self.generations)}"
            )
        g = self.generations[gen]
        return g.width, g.depth


def read_raw_params(path: str | Path) -> Any:
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such params file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_params(path: str | Path = "params.yaml", overrides: Sequence[str] = ()) -> Params:
    """Read and validate `params.yaml` (plus KEY=VALUE overrides); errors name the file and key."""
    path = Path(path)
    raw = read_raw_params(path)
    try:
        if overrides:
            if not isinstance(raw, Mapping):
                raise ConfigError(f"top level: expected a mapping, got {type(raw).__name__}")
            raw = apply_overrides(raw, overrides)
        return params_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict:
    """A copy of raw params with `key.path[i].leaf=value` overrides applied (as `dvc exp run -S`).

    Values are parsed as YAML (`0.8`, `true`, `[a, b]`); the key path must already exist,
    except for a new leaf key inside an existing mapping.
    """
    result = copy.deepcopy(dict(raw))
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r}: expected KEY=VALUE")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"override {override!r}: value is not valid YAML") from None
        steps = _key_steps(key)
        node: Any = result
        for depth, step in enumerate(steps[:-1]):
            node = _step_into(node, step, key, steps[: depth + 1])
        last = steps[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or not -len(node) <= last < len(node):
                raise ConfigError(f"override {key}: no list item [{last}] there")
        elif not isinstance(node, dict):
            raise ConfigError(f"override {key}: {last!r} is not inside a mapping")
        node[last] = value
    return result


def _key_steps(key: str) -> list[str | int]:
    steps: list[str | int] = []
    for part in key.split("."):
        name, *indices = part.split("[")
        if name:
            steps.append(name)
        for index in indices:
            if not index.endswith("]") or not index[:-1].lstrip("-").isdigit():
                raise ConfigError(f"override {key}: bad list index [{index}")
            steps.append(int(index[:-1]))
    return steps


def _step_into(node: Any, step: str | int, key: str, walked: list) -> Any:
    try:
        return node[step]
    except (KeyError, IndexError, TypeError):
        where = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in walked).lstrip(".")
        raise ConfigError(f"override {key}: no such key {where}") from None


def params_from_dict(raw: Any) -> Params:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"top level: expected a mapping, got {type(raw).__name__}")
    sections = {
        "data": DataConfig,
        "augment": AugmentConfig,
        "teacher": TeacherConfig,
        "student": StudentConfig,
        "optim": OptimConfig,
        "infer": InferConfig,
        "loop": LoopConfig,
        "distributed": DistributedConfig,
        "calibration": CalibrationConfig,
    }
    allowed = {"seed", "refine", "generations", "evaluate_generations", *sections}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key; allowed: {sorted(allowed)}")
    seed = _typed(raw.get("seed", 0), int, "seed")
    built = {name: _build(cls, raw.get(name, {}), name) for name, cls in sections.items()}
    refine = raw.get("refine", {})
    if not isinstance(refine, Mapping):
        raise ConfigError(f"refine: expected a mapping, got {type(refine).__name__}")
    generations = _generations(raw.get("generations"), built["teacher"])
    expected = list(range(len(generations) + 1))
    if raw.get("evaluate_generations") != expected:
        raise ConfigError(
            f"evaluate_generations: must be {expected} (the teacher and each of the "
            f"{len(generations)} generations), got {raw.get('evaluate_generations')!r}"
        )
    return Params(seed=seed, refine=refine, generations=generations, **built)


def _generations(raw: Any, teacher: TeacherConfig) -> dict[int, GenerationConfig]:
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError('generations: expected a mapping with quoted keys "1".."N"')
    generations: dict[int, GenerationConfig] = {}
    for key, value in raw.items():
        # DVC's foreach only names stages infer@1.. from *string* keys; an int key
        # silently yields no stages at all, so we refuse it here.
        if not isinstance(key, str) or not key.isdigit():
            raise ConfigError(
                f'generations.{key}: keys must be quoted generation numbers ("1", "2", ...), '
                f"got {key!r} of type {type(key).__name__}"
            )
        generations[int(key)] = _build(GenerationConfig, value, f"generations.{key}")
    expected = list(range(1, len(generations) + 1))
    if sorted(generations) != expected:
        raise ConfigError(f"generations: keys must be {[str(k) for k in expected]}, got {list(raw)}")
    prev_size = (teacher.width, teacher.depth)
    for gen in expected:
        g = generations[gen]
        if g.teacher != gen - 1:
            raise ConfigError(
                f"generations.{gen}.teacher: the student of generation {gen - 1} teaches "
                f"generation {gen}; expected {gen - 1}, got {g.teacher}"
            )
        if g.width < prev_size[0] or g.depth < prev_size[1]:
            raise ConfigError(
                f"generations.{gen}: student (width={g.width}, depth={g.depth}) is smaller than "
                f"its teacher (width={prev_size[0]}, depth={prev_size[1]}); a noisy student is "
                "at least as large as its teacher"
            )
        prev_size = (g.width, g.depth)
    return generations


def _build(cls: type, raw: Any, path: str):
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}: unknown key; allowed: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        if name in raw:
            values[name] = _typed(raw[name], hints[name], f"{path}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{path}.{name}: required key is missing")
    obj = cls(**values)
    obj.validate(path)
    return obj


def _typed(value: Any, hint: Any, path: str):
    """Check `value` against a scalar type hint; ints are accepted where floats are."""
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _typed(value, option, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin in (list, tuple):
        # list[T] or tuple[T, ...] from a YAML list; frozen configs keep tuples.
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        item_hint = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        items = [_typed(item, item_hint, f"{path}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    return value


def _range(value: float, low: float, high: float, path: str) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{path}: must be in [{low}, {high}], got {value!r}")


def _class_names(names: tuple[str, ...], path: str) -> None:
    if len(names) < 2:
        raise ConfigError(f"{path}: need at least two class names, got {list(names)}")
    for i, name in enumerate(names):
        if not name.strip():
            raise ConfigError(f"{path}[{i}]: class names must not be empty")
    seen = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ConfigError(f"{path}[{i}]: duplicate class name {name!r}")
        seen.add(name)


def _choice(value: str, choices: tuple[str, ...], path: str) -> None:
    if value not in choices:
        raise ConfigError(f"{path}: must be one of {list(choices)}, got {value!r}")


def _unlabeled_ranges(cfg, path: str) -> None:
    _choice(cfg.unlabeled, UNLABELED_CHOICES, f"{path}.unlabeled")
    _range(cfg.unlabeled_weight, 0.0, 100.0, f"{path}.unlabeled_weight")
    _range(cfg.unlabeled_threshold, 0.0, 1.0, f"{path}.unlabeled_threshold")
    if not cfg.unlabeled_ratio > 0:
        raise ConfigError(f"{path}.unlabeled_ratio: must be > 0, got {cfg.unlabeled_ratio!r}")
    _range(cfg.ema_decay, 0.0, 0.99999, f"{path}.ema_decay")


def _model_ranges(cfg, path: str) -> None:
    _range(cfg.width, 4, 4096, f"{path}.width")
    _range(cfg.depth, 1, 64, f"{path}.depth")
    _range(cfg.dropout, 0.0, 0.95, f"{path}.dropout")
    _range(cfg.drop_path, 0.0, 0.95, f"{path}.drop_path")


__all__ = [
    "AugmentConfig",
    "CalibrationConfig",
    "DataConfig",
    "DistributedConfig",
    "GenerationConfig",
    "InferConfig",
    "LoopConfig",
    "OptimConfig",
    "Params",
    "StudentConfig",
    "TeacherConfig",
    "apply_overrides",
    "load_params",
    "params_from_dict",
]
