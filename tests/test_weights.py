"""Starting weights: head replacement keeps every other tensor, bad files are one named
error before anything is written, an imported teacher scores as its checkpoint does,
and student.init 'teacher' copies what matches."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import yaml

from conftest import REPO_ROOT, tiny_params
from selftrain.architectures import build_model
from selftrain.config import DataConfig, params_from_dict
from selftrain.data import prepare_digits
from selftrain.errors import ModelError
from selftrain.evaluate import evaluate_model
from selftrain.models import ModelHeader, count_parameters, load_model, save_model
from selftrain.trainers import initial_model, train_teacher
from selftrain.weights import load_weights


def resnet18_file(project, classes: int, name: str = "r18.pt") -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    model, _ = build_model("resnet18", None, None, 0.0, 0.0, classes)
    (project / "weights").mkdir(exist_ok=True)
    torch.save(model.state_dict(), project / "weights" / name)
    return model.state_dict()


def test_head_is_replaced_when_the_class_count_differs_and_nothing_else(tmp_path):
    source = resnet18_file(tmp_path, classes=7)
    torch.manual_seed(2)
    model, _ = build_model("resnet18", None, None, 0.0, 0.0, 3)
    fresh_head = model.fc.weight.detach().clone()
    replaced = load_weights(model, "weights/r18.pt", tmp_path)
    assert replaced == ["fc.weight", "fc.bias"]
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in source.items() if not k.startswith("fc."))
    assert torch.equal(model.fc.weight, fresh_head) and model.fc.weight.shape == (3, 512)


def test_same_class_count_loads_every_tensor(tmp_path):
    source = resnet18_file(tmp_path, classes=3)
    model, _ = build_model("resnet18", None, None, 0.0, 0.0, 3)
    assert load_weights(model, "weights/r18.pt", tmp_path) == []
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.items())


def test_a_selftrain_model_directory_is_a_source(tmp_path):
    model, _ = build_model("resnet-s3", 8, 1, 0.0, 0.0, 3)
    header = ModelHeader("resnet-s3", 8, 1, 3, ("a", "b", "c"), 16, 2, count_parameters(model))
    save_model(model, header, tmp_path / "weights" / "gen2")
    target, _ = build_model("resnet-s3", 8, 1, 0.0, 0.0, 3)
    load_weights(target, "weights/gen2", tmp_path)
    assert all(torch.equal(target.state_dict()[k], v) for k, v in model.state_dict().items())


def bad_sources(project):
    weights = project / "weights"
    weights.mkdir(exist_ok=True)
    (weights / "notes.pt").write_text("not a checkpoint\n")
    resnet18_file(project, classes=3, name="whole.pt")
    data = (weights / "whole.pt").read_bytes()
    (weights / "truncated.pt").write_bytes(data[: len(data) // 2])
    torch.manual_seed(0)
    mobilenet, _ = build_model("mobilenet_v3_small", None, None, 0.0, 0.0, 3)
    torch.save(mobilenet.state_dict(), weights / "mobilenet.pt")


@pytest.mark.parametrize(
    "source, message",
    [
        ("weights/notes.pt", r"weights/notes\.pt: not a readable state dict \(wrong or truncated file\)"),
        ("weights/truncated.pt", r"weights/truncated\.pt: not a readable state dict \(wrong or truncated file\)"),
        ("weights/mobilenet.pt", r"weights/mobilenet\.pt: weights do not fit ResNet \(missing keys: conv1\.weight"),
        ("weights/absent.pt", r"weights/absent\.pt: no such weights file"),
        ("/tmp/elsewhere.pt", r"weights must be inside .*/weights"),
    ],
)
def test_bad_source_is_one_named_error(tmp_path, source, message):
    bad_sources(tmp_path)
    model, _ = build_model("resnet18", None, None, 0.0, 0.0, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ModelError, match=message):
        load_weights(model, source, tmp_path)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return prepare_digits(tmp_path_factory.mktemp("weights_data") / "prepared", DataConfig(subset=120, labeled_fraction=0.2), seed=0)


def params_for(change) -> object:
    raw = tiny_params(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
    change(raw)
    return params_from_dict(copy.deepcopy(raw))


@pytest.mark.parametrize("source", ["notes.pt", "truncated.pt", "mobilenet.pt"])
def test_train_teacher_stage_with_a_bad_file_writes_nothing(tmp_path, monkeypatch, dataset, source):
    from stages import train_teacher

    bad_sources(tmp_path)
    raw = tiny_params()
    raw["teacher"].update(arch="resnet18", width=None, depth=None, weights=f"weights/{source}", epochs=0)
    raw["generations"] = {"1": {"teacher": 0, "arch": "resnet50"}, "2": {"teacher": 1, "arch": "resnet50"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match=rf"weights/{source}: "):
        train_teacher.main(
            ["--manifest", str(dataset.root / "manifest.parquet"), "--out", "models/gen0", "--live-dir", "dvclive/gen0"]
        )
    assert not (tmp_path / "models").exists() and not (tmp_path / "checkpoints").exists()


def test_imported_teacher_scores_as_its_checkpoint(tmp_path, monkeypatch, dataset):
    """teacher.epochs 0: generation 0 is the checkpoint as it is; evaluate@0's metrics are
    those of evaluating the checkpoint directly (calibration off: no new temperature)."""
    torch.manual_seed(3)
    source, _ = build_model("resnet-s3", 8, 1, 0.0, 0.0, dataset.num_classes)
    header = ModelHeader("resnet-s3", 8, 1, dataset.num_classes, tuple(dataset.class_names), 16, 0, count_parameters(source))
    save_model(source, header, tmp_path / "weights" / "production")
    params = params_for(lambda r: r["teacher"].update(epochs=0, weights="weights/production", width=8, depth=1))
    params = dataclasses.replace(params, calibration=dataclasses.replace(params.calibration, enabled=False))
    monkeypatch.chdir(tmp_path)
    model, gen0_header, history = train_teacher(dataset, params)
    assert history == [] and gen0_header.source == "weights/production"
    save_model(model, gen0_header, tmp_path / "models" / "gen0")
    evaluated = evaluate_model(*load_model(tmp_path / "models" / "gen0", dataset.class_names), dataset, params)
    direct = evaluate_model(*load_model(tmp_path / "weights" / "production", dataset.class_names), dataset, params)
    assert evaluated[0].pop("noise_applied") == {"dropout": True, "drop_path": True}
    assert direct[0].pop("noise_applied") is None  # its header predates the field
    assert evaluated[0] == direct[0]
    assert evaluated[1].equals(direct[1])


def test_student_init_teacher_copies_what_matches(tmp_path, capsys):
    teacher, _ = build_model("resnet-s3", 8, 1, 0.0, 0.0, 3)
    header = ModelHeader("resnet-s3", 8, 1, 3, ("a", "b", "c"), 16, 0, count_parameters(teacher))
    save_model(teacher, header, tmp_path / "gen0")
    same = params_for(lambda r: r["student"].update(init="teacher"))  # generation 1: width 8, as the teacher
    student, source, _ = initial_model(same, 1, 3, "train_student@1", tmp_path / "gen0")
    assert source == str(tmp_path / "gen0")
    assert all(torch.equal(student.state_dict()[k], v) for k, v in teacher.state_dict().items())
    wider = params_for(lambda r: (r["student"].update(init="teacher"), r["generations"]["1"].update(width=12)))
    capsys.readouterr()
    student, _, _ = initial_model(wider, 1, 3, "train_student@1", tmp_path / "gen0")
    out = capsys.readouterr().out
    # Widths differ everywhere but in the classifier's bias (one per class) and the
    # batch-norm step counters: those alone are copied.
    counters = [k for k in teacher.state_dict() if k.endswith("num_batches_tracked")]
    total = len(student.state_dict())
    assert f"train_student@1: {len(counters) + 1} tensors from the teacher {tmp_path / 'gen0'}, {total - len(counters) - 1} fresh" in out
    assert "fresh (no tensor of that name and shape in the teacher): stem.0.weight" in out
    assert torch.equal(student.head[3].bias, teacher.head[3].bias)


def test_weights_and_student_init_teacher_together_are_refused():
    from selftrain.errors import ConfigError

    with pytest.raises(ConfigError, match=r"generations\.1\.weights: student\.init 'teacher' already says"):
        params_for(lambda r: (r["student"].update(init="teacher"), r["generations"]["1"].update(weights="weights/x.pt")))
