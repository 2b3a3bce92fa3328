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
    DropPath,
    ModelHeader,
    conv_bn,
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


@pytest.mark.parametrize(("kernel", "stride", "relu"), [(3, 1, True), (3, 2, False), (1, 2, False)])
def test_conv_bn_is_torchvisions_conv_norm_activation(kernel, stride, relu):
    from torchvision.ops import Conv2dNormActivation

    torch.manual_seed(0)
    ours = conv_bn(4, 6, kernel, stride=stride, relu=relu)
    torch.manual_seed(0)
    theirs = Conv2dNormActivation(4, 6, kernel, stride=stride, activation_layer=torch.nn.ReLU if relu else None)
    # Same keys, same initial values (same init order): checkpoints and seeded runs carry over.
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    x = torch.randn(5, 4, 9, 9)
    assert torch.equal(ours.train()(x), theirs.train()(x))


def test_drop_path_draws_as_torchvisions_stochastic_depth():
    from torchvision.ops import StochasticDepth

    x = torch.randn(64, 3, 4, 4)
    torch.manual_seed(1)
    ours = DropPath(0.3).train()(x)
    torch.manual_seed(1)
    theirs = StochasticDepth(0.3, mode="row").train()(x)
    assert torch.equal(ours, theirs)
    dropped = (ours.flatten(1) == 0).all(dim=1)
    assert 0 < int(dropped.sum()) < 64  # some rows dropped, not all
    assert torch.equal(DropPath(0.3).eval()(x), x)
    with pytest.raises(ValueError, match="between 0 and 1"):
        DropPath(1.5)


def test_loop_stages_import_neither_torchvision_nor_sklearn():
    # Each stage is its own process: a package import is paid once per stage per run.
    # resnet-s3 needs neither; scikit-learn is imported where prepare splits. A multiclass
    # evaluate scores and infer's mahalanobis score fits without it (numpy).
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, numpy, stages.train_teacher, stages.train_student, stages.infer, stages.refine, stages.evaluate; "
        "from selftrain.metrics import classification_metrics; "
        "classification_metrics(numpy.array([0, 1]), numpy.array([0, 0]), ['a', 'b']); "
        "from selftrain.ood import Centroids; Centroids.fit(numpy.eye(4), numpy.array([0, 1, 0, 1]), 2); "
        "print(sorted(m for m in ('torchvision', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
