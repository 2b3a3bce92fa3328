"""evaluate_model on a model whose outputs are fixed in advance: metrics counted by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conftest import tiny_params
from selftrain.calibration import ece_noise_floor, softmax
from selftrain.config import DataConfig, params_from_dict
from selftrain.data import prepare_digits
from selftrain.evaluate import evaluate_model
from selftrain.models import ModelHeader


class ScriptedModel(nn.Module):
    """Returns the next rows of `logits` for each batch, whatever the images: the loader
    reads a split in manifest order, so row i of the script is the output for item i."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)
        self.anchor = nn.Parameter(torch.zeros(()))  # a parameter, so the model has a device
        self.position = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n = images.shape[0]
        out = self.logits[self.position : self.position + n] + 0 * self.anchor
        self.position += n
        return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return prepare_digits(tmp_path_factory.mktemp("eval"), DataConfig(subset=120, labeled_fraction=0.2), seed=0)


def one_hot_logits(pred: np.ndarray, classes: int) -> torch.Tensor:
    return torch.from_numpy(np.eye(classes, dtype=np.float32)[pred] * 5.0)


def test_metrics_are_those_of_the_scripted_predictions(dataset):
    raw = tiny_params()
    raw["infer"]["batch_size"] = 8  # several batches per split
    raw["augment"]["device"] = "cpu"
    params = params_from_dict(raw)
    classes = dataset.num_classes
    test_truth = dataset.rows("test")["label"].to_numpy(np.int64)
    val_truth = dataset.rows("val")["label"].to_numpy(np.int64)
    # Test: the first 5 items are predicted as the next class, the rest right. Val: all right
    # but the first item.
    test_pred = test_truth.copy()
    test_pred[:5] = (test_truth[:5] + 1) % classes
    val_pred = val_truth.copy()
    val_pred[0] = (val_truth[0] + 1) % classes
    model = ScriptedModel(one_hot_logits(np.concatenate([test_pred, val_pred]), classes))
    header = ModelHeader("resnet", 8, 1, classes, dataset.class_names, 16, generation=2, num_parameters=1234)

    metrics, confusion = evaluate_model(model, header, dataset, params)

    n = len(test_truth)
    assert metrics["accuracy"] == pytest.approx((n - 5) / n)
    assert metrics["val"]["accuracy"] == pytest.approx((len(val_truth) - 1) / len(val_truth))
    f1 = []
    for c in range(classes):
        tp = np.sum((test_truth == c) & (test_pred == c))
        predicted, actual = np.sum(test_pred == c), np.sum(test_truth == c)
        f1.append(2 * tp / (predicted + actual) if predicted + actual else 0.0)
    assert metrics["macro_f1"] == pytest.approx(np.mean(f1))
    assert {k: metrics[k] for k in ("generation", "num_parameters", "width", "depth")} == {
        "generation": 2, "num_parameters": 1234, "width": 8, "depth": 1,
    }
    names = np.array(dataset.class_names)
    assert confusion["actual"].tolist() == names[test_truth].tolist()
    assert confusion["predicted"].tolist() == names[test_pred].tolist()
    assert model.position == n + len(val_truth)  # each split predicted once
    # Beside the ECE read: what a calibrated model with the same confidences (every test row
    # at e^5 / (e^5 + 9), no temperature) reads on these rows.
    test_probs = softmax(one_hot_logits(test_pred, classes).numpy())
    assert metrics["calibration"]["ece_floor"] == pytest.approx(ece_noise_floor(test_probs))
    assert metrics["calibration"]["ece_floor"] > 0
