"""Models: sizes grow with width/depth, noise only in train mode, safe checkpoints."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from selftrain.architectures import RESNET_S3
from selftrain.errors import ModelError
from selftrain.models import (
    HEADER_FILE,
    ModelHeader,
    count_parameters,
    create_model,
    load_model,
    save_model,
)


def header(model, width=8, depth=1, classes=("a", "b", "c")) -> ModelHeader:
    return ModelHeader(RESNET_S3, width, depth, len(classes), tuple(classes), 16, 0, count_parameters(model))


def test_logits_shape():
    model = create_model(8, 1, 0.0, 0.0, num_classes=3)
    assert model(torch.zeros(4, 3, 16, 16)).shape == (4, 3)


def test_bigger_settings_give_bigger_models():
    small = count_parameters(create_model(8, 1, 0.0, 0.0, 10))
    wider = count_parameters(create_model(16, 1, 0.0, 0.0, 10))
    deeper = count_parameters(create_model(8, 2, 0.0, 0.0, 10))
    assert small < wider and small < deeper


def test_noise_is_random_in_train_mode_and_off_in_eval_mode():
    torch.manual_seed(0)
    model = create_model(8, 2, dropout=0.5, drop_path=0.5, num_classes=3)
    x = torch.randn(8, 3, 16, 16)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_checkpoint_round_trip(tmp_path):
    model = create_model(8, 1, 0.3, 0.2, 3).eval()
    save_model(model, header(model), tmp_path / "m")
    loaded, head = load_model(tmp_path / "m", ("a", "b", "c"))
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(model(x), loaded(x))
    assert head.num_parameters == count_parameters(model)
    assert json.loads((tmp_path / "m" / HEADER_FILE).read_text())["architecture"] == RESNET_S3


def test_checkpoint_with_other_classes_names_both(tmp_path):
    model = create_model(8, 1, 0.0, 0.0, 3)
    save_model(model, header(model), tmp_path / "m")
    with pytest.raises(ModelError, match=r"checkpoint has 3 classes \['a', 'b', 'c'\], the data has 2 classes"):
        load_model(tmp_path / "m", ("a", "b"))


def test_checkpoint_of_the_other_task_is_refused(tmp_path):
    model = create_model(8, 1, 0.0, 0.0, 3)
    save_model(model, dataclasses.replace(header(model), task="multilabel"), tmp_path / "m")
    assert load_model(tmp_path / "m", expect_task="multilabel")[1].task == "multilabel"
    with pytest.raises(ModelError, match="trained for task multilabel, params.yaml says task multiclass"):
        load_model(tmp_path / "m", ("a", "b", "c"), "multiclass")


def test_header_without_a_task_is_multiclass(tmp_path):
    model = create_model(8, 1, 0.0, 0.0, 3)
    save_model(model, header(model), tmp_path / "m")
    raw = json.loads((tmp_path / "m" / HEADER_FILE).read_text())
    del raw["task"]  # a model saved before the task existed
    (tmp_path / "m" / HEADER_FILE).write_text(json.dumps(raw))
    assert load_model(tmp_path / "m", expect_task="multiclass")[1].task == "multiclass"


def test_checkpoint_of_other_architecture_is_named(tmp_path):
    model = create_model(8, 1, 0.0, 0.0, 3)
    # A header that lies about the width: the weights do not fit.
    save_model(model, header(model, width=16), tmp_path / "m")
    with pytest.raises(ModelError, match=r"weights do not fit the header's architecture \(resnet-s3, width=16"):
        load_model(tmp_path / "m")


def test_missing_header_is_named(tmp_path):
    with pytest.raises(ModelError, match="no model header"):
        load_model(tmp_path)
