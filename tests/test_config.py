"""Config: loaded once, typed, and every bad value named by its key path."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import yaml

from conftest import REPO_ROOT
from selftrain.config import load_params, params_from_dict
from selftrain.errors import ConfigError

SHIPPED = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def changed(path: str, value):
    """The shipped params with one dotted key set (or deleted when value is DELETE)."""
    raw = copy.deepcopy(SHIPPED)
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return raw


DELETE = object()


def test_shipped_params_load():
    params = load_params(REPO_ROOT / "params.yaml")
    assert params.num_generations == len(SHIPPED["generations"])
    assert params.model_size(0) == (SHIPPED["teacher"]["width"], SHIPPED["teacher"]["depth"])
    assert params.data.source == "digits"


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("teacher.epoch", 3, "teacher.epoch: unknown key"),
        ("data.labeled_fraction", 1.5, "data.labeled_fraction: must be in"),
        ("data.labeled_fraction", 0.9, "data.labeled_fraction: labeled_fraction (0.9) + val_fraction (0.1) must be below 1"),
        ("teacher.epochs", "ten", "teacher.epochs: expected an integer"),
        ("teacher.epochs", 2.5, "teacher.epochs: expected an integer"),
        ("student.dropout", True, "student.dropout: expected a number"),
        ("augment.device", "tpu", "augment.device: must be one of ['auto', 'gpu', 'cpu']"),
        ("augment.flip", "yes", "augment.flip: expected true or false"),
        ("student.batch_ratio", 0, "student.batch_ratio: must be > 0"),
        ("seed", "zero", "seed: expected an integer"),
        ("sead", 1, "sead: unknown key"),
        ("generations.2.width", 8, "generations.2: student (width=8, depth=1) is smaller than its teacher"),
        ("generations.2.teacher", 0, "generations.2.teacher: the student of generation 1 teaches"),
        ("generations.2.colour", 0, "generations.2.colour: unknown key"),
        ("generations.2.width", DELETE, "generations.2.width: required key is missing"),
        ("evaluate_generations", [0, 1], "evaluate_generations: must be [0, 1, 2, 3]"),
        ("student.epochs", 0, "student.epochs: expected an integer in [1, 10000] or 'auto'"),
        ("student.epochs", "many", "student.epochs: expected an integer in [1, 10000] or 'auto'"),
        ("student.epochs", True, "student.epochs: expected an integer in [1, 10000] or 'auto'"),
        ("calibration.prior_std", 0, "calibration.prior_std: expected a number in (0, 10], 'auto' or null, got 0"),
        ("calibration.prior_std", "loose", "calibration.prior_std: expected a number in (0, 10], 'auto' or null"),
        ("calibration.prior_std", True, "calibration.prior_std: expected a number in (0, 10], 'auto' or null"),
    ],
)
def test_bad_value_names_its_key(path, value, message):
    with pytest.raises(ConfigError) as info:
        params_from_dict(changed(path, value))
    assert message in str(info.value)


def test_unquoted_generation_keys_are_refused():
    raw = copy.deepcopy(SHIPPED)
    raw["generations"] = {int(k): v for k, v in raw["generations"].items()}
    with pytest.raises(ConfigError, match="keys must be quoted"):
        params_from_dict(raw)


def test_generations_must_be_contiguous():
    raw = copy.deepcopy(SHIPPED)
    raw["generations"] = {"1": raw["generations"]["1"], "3": raw["generations"]["3"]}
    with pytest.raises(ConfigError, match=r"generations: keys must be \['1', '2'\]"):
        params_from_dict(raw)


def test_load_params_names_the_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("teacher: {epochs: -1}\n")
    with pytest.raises(ConfigError, match=rf"{bad}: teacher.epochs: expected an integer in \[0, 10000\] or 'auto'"):
        load_params(bad)
    with pytest.raises(ConfigError, match="no such params file"):
        load_params(tmp_path / "missing.yaml")


def test_config_is_frozen():
    params = load_params(REPO_ROOT / "params.yaml")
    with pytest.raises(AttributeError):
        params.teacher.epochs = 1  # type: ignore[misc]


def test_load_params_applies_overrides():
    params = load_params(REPO_ROOT / "params.yaml", ["teacher.epochs=3"])
    assert params.teacher.epochs == 3
    with pytest.raises(ConfigError, match=r"teacher.epochs: expected an integer in \[0, 10000\] or 'auto' \(40 multiclass, 90 multilabel\), got -1"):
        load_params(REPO_ROOT / "params.yaml", ["teacher.epochs=-1"])


def test_replace_gives_params_validated_again():
    # Callers derive params with dataclasses.replace (e.g. another task runner); the
    # generations, validated once from quoted keys, must pass validation again.
    params = load_params(REPO_ROOT / "params.yaml")
    dask = dataclasses.replace(params, infer=dataclasses.replace(params.infer, task_runner="dask"))
    assert dask.infer.task_runner == "dask" and dask.generations == params.generations
    with pytest.raises(ValueError, match="epochs"):
        dataclasses.replace(params.teacher, epochs=0)


def test_student_epochs_auto_follows_the_task():
    """auto: 20 passes for a multiclass student, 120 for a multilabel one (measured, BENCHMARKS.md)."""
    multiclass = params_from_dict(changed("student.epochs", "auto"))
    assert [multiclass.student_epochs(k) for k in (1, 2)] == [15, 15]
    raw = changed("student.epochs", "auto")
    raw["task"] = "multilabel"
    raw["data"]["source"] = "digits-mosaic"
    multilabel = params_from_dict(raw)
    assert [multilabel.student_epochs(k) for k in (1, 2)] == [120, 120]


def test_teacher_epochs_auto_follows_the_task_and_a_given_count_wins():
    """auto: 40 passes for a multiclass teacher, 90 for a multilabel one (measured, BENCHMARKS.md)."""
    assert params_from_dict(changed("teacher.epochs", "auto")).teacher_epochs() == 40
    raw = changed("teacher.epochs", "auto")
    raw["task"] = "multilabel"
    raw["data"]["source"] = "digits-mosaic"
    assert params_from_dict(raw).teacher_epochs() == 90
    raw["teacher"]["epochs"] = 12
    assert params_from_dict(raw).teacher_epochs() == 12


def test_student_epochs_given_or_per_generation_win_over_auto():
    raw = changed("student.epochs", 7)
    raw["task"] = "multilabel"
    raw["data"]["source"] = "digits-mosaic"
    raw["generations"]["2"]["epochs"] = 3
    params = params_from_dict(raw)
    assert params.student_epochs(1) == 7
    assert params.student_epochs(2) == 3


def test_calibration_prior_applies_on_every_val_size_and_auto_below_min_val_items_only():
    from selftrain.params_schema import DEFAULT_PRIOR_STD

    # The shipped prior, and the schema's default when params.yaml leaves the key out.
    calibration = load_params(REPO_ROOT / "params.yaml").calibration
    assert calibration.prior_std == DEFAULT_PRIOR_STD == 0.25
    assert params_from_dict(changed("calibration.prior_std", DELETE)).calibration.prior_std == DEFAULT_PRIOR_STD
    assert calibration.resolved_prior_std(val_items=10, min_val_items=50) == DEFAULT_PRIOR_STD
    assert calibration.resolved_prior_std(val_items=144, min_val_items=50) == DEFAULT_PRIOR_STD
    auto = params_from_dict(changed("calibration.prior_std", "auto")).calibration
    assert auto.resolved_prior_std(val_items=10, min_val_items=50) == DEFAULT_PRIOR_STD
    assert auto.resolved_prior_std(val_items=144, min_val_items=50) is None
    given = params_from_dict(changed("calibration.prior_std", 1)).calibration
    assert given.resolved_prior_std(val_items=144, min_val_items=50) == 1.0
    assert params_from_dict(changed("calibration.prior_std", None)).calibration.resolved_prior_std(10, 50) is None
