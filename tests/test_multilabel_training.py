"""Multi-label training: the per-class consistency loss, a sigmoid/BCE fit, the labeled and
pseudo-labelled targets, and the temperature fitted by binary cross-entropy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from multilabel_prepared import CLASS_NAMES, LABEL_SETS, mosaic_image, multilabel_params, write_prepared
from selftrain.calibration import fit_binary_temperature
from selftrain.config import AugmentConfig, OptimConfig
from selftrain.data import Dataset, load_dataset
from selftrain.errors import DataError
from selftrain.losses import binary_consistency_loss
from selftrain.models import Calibrated, create_model
from selftrain.train import FitOptions, TrainSet, UnlabeledLoss, fit
from selftrain.trainers import calibrated, labeled_train_set, pseudo_train_set, train_teacher


def test_binary_consistency_keeps_only_confident_pairs():
    # sigmoid: 4 -> 0.982 (present), -4 -> 0.018 (absent), 0 and 0.1 -> unsure, +-5 confident.
    weak = torch.tensor([[4.0, -4.0, 0.0], [0.1, 5.0, -5.0]])
    strong = torch.tensor([[0.5, 1.0, -2.0], [3.0, -1.0, 0.2]], requires_grad=True)
    loss, mask = binary_consistency_loss(weak, strong, threshold=0.95)
    assert mask.tolist() == [[1, 1, 0], [0, 1, 1]]
    hard = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    per_pair = F.binary_cross_entropy_with_logits(strong.detach(), hard, reduction="none")
    # Averaged over all 6 pairs, the unsure ones counting 0.
    assert loss.item() == pytest.approx((per_pair * mask).sum().item() / 6)
    loss.backward()
    assert strong.grad[0, 2] == 0 and strong.grad[1, 0] == 0
    assert strong.grad[0, 0] != 0 and strong.grad[1, 2] != 0


def test_binary_consistency_trains_no_weak_view():
    weak = torch.tensor([[6.0, -6.0]], requires_grad=True)
    loss, _ = binary_consistency_loss(weak, torch.zeros(1, 2, requires_grad=True), threshold=0.9)
    loss.backward()
    assert weak.grad is None


@pytest.fixture(scope="module")
def two_object_images(tmp_path_factory):
    """24 images cycling through the four label sets of two classes, and their 0/1 targets."""
    from PIL import Image

    root = tmp_path_factory.mktemp("two_objects")
    rng = np.random.default_rng(0)
    paths, targets = [], []
    for i in range(24):
        label_set = LABEL_SETS[i % len(LABEL_SETS)]
        path = root / f"{i}.png"
        Image.fromarray(mosaic_image(label_set, rng)).save(path)
        paths.append(str(path))
        targets.append([float(name in label_set) for name in CLASS_NAMES])
    return paths, np.array(targets, dtype=np.float32)


def options(**kw):
    base = dict(
        epochs=8, lr=0.05, batch_size=8, image_size=8, seed=0, task="multilabel",
        optim=OptimConfig(), augment=AugmentConfig(num_threads=1), input_noise=False,
    )  # fmt: skip
    base.update(kw)
    return FitOptions(**base)


def test_sigmoid_fit_learns_two_objects_per_image(two_object_images):
    paths, targets = two_object_images
    model = create_model(8, 1, 0.0, 0.0, 2)
    history = fit(model, TrainSet(paths, targets, np.ones(len(paths), np.float32)), None, options(), "cpu", "t")
    assert history[-1]["loss"] < history[0]["loss"]
    # Right (image, class) decisions; half the pairs are positive, so 0.5 is chance.
    assert history[-1]["train_accuracy"] >= 0.9
    model.eval()
    from selftrain.prediction import predict_probs

    probs = predict_probs(model, paths, image_size=8, batch_size=8, augment=AugmentConfig(num_threads=1),
                          device="cpu", task="multilabel")  # fmt: skip
    # Sigmoids: rows need not sum to 1 (the empty set sums near 0, both objects near 2).
    assert ((probs >= 0.5) == (targets >= 0.5)).mean() >= 0.9
    assert probs[targets.sum(axis=1) == 2].sum(axis=1).min() > 1.0


def test_multilabel_fit_reports_the_pair_mask_of_its_consistency_loss(two_object_images):
    paths, targets = two_object_images
    model = create_model(8, 1, 0.0, 0.0, 2)
    opts = options(epochs=1, unlabeled=UnlabeledLoss("consistency", threshold=0.5, ratio=1.0))
    history = fit(model, TrainSet(paths[:8], targets[:8], np.ones(8, np.float32)), None, opts, "cpu", "t",
                  unlabeled=paths[8:])  # fmt: skip
    # Threshold 0.5: every (row, class) pair is confident one way or the other.
    assert history[0]["unlabeled_mask"] == pytest.approx(1.0)
    assert np.isfinite(history[0]["unlabeled_loss"])


def test_unknown_task_is_refused():
    with pytest.raises(ValueError, match="FitOptions.task"):
        options(task="multi-label")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return load_dataset(write_prepared(tmp_path_factory.mktemp("prepared")))


def test_labeled_targets_come_from_the_labels_sets(prepared):
    train_set = labeled_train_set(prepared, "multilabel")
    rows = prepared.labeled()
    assert len(train_set.paths) == len(rows) == 16
    expected = [[float(name in LABEL_SETS[i % 4]) for name in CLASS_NAMES] for i in range(16)]
    assert train_set.targets.tolist() == expected
    assert train_set.weights.tolist() == [1.0] * 16


def test_a_manifest_without_labels_is_a_named_error(prepared):
    no_labels = dataclasses.replace(prepared, manifest=prepared.manifest.drop(columns=["labels"]))
    with pytest.raises(DataError, match=r"manifest.parquet: no 'labels' column"):
        labeled_train_set(no_labels, "multilabel")


def test_an_unknown_class_names_the_row(prepared):
    manifest = prepared.manifest.copy()
    manifest.loc[manifest["item_id"] == "labeled-002", "labels"] = "left|middle"
    with pytest.raises(DataError, match=r"row 2 has label 'middle'"):
        labeled_train_set(dataclasses.replace(prepared, manifest=manifest), "multilabel")


def test_student_reads_multilabel_target_vectors(tmp_path):
    # Contract 4: `target` lists of C floats; an empty set is all 0, a soft row need not sum to 1.
    refined = pd.DataFrame(
        {
            "path": ["a.png", "b.png", "c.png"],
            "labels": [["left", "right"], [], None],
            "target": [[1.0, 1.0], [0.0, 0.0], None],
            "weight": [1.0, 0.5, 0.0],
            "kept": [True, True, False],
            "copies": [2, 1, 0],
        }
    )
    train_set = pseudo_train_set(Dataset(pd.DataFrame(), CLASS_NAMES, tmp_path), refined, gen=1)
    assert train_set.targets.tolist() == [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]]
    assert train_set.weights.tolist() == [1.0, 1.0, 0.5]


def test_binary_temperature_recovers_the_temperature_of_the_targets():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, size=(4000, 3))
    # Targets drawn from sigmoid(logits / 3): the logits are 3x over-confident.
    targets = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits / 3))).astype(np.float32)
    assert fit_binary_temperature(logits, targets) == pytest.approx(3.0, rel=0.1)
    assert fit_binary_temperature(np.empty((0, 3)), np.empty((0, 3))) == 1.0


class HalfBrightness(torch.nn.Module):
    """Logits (B, 2) of each half's mean brightness: +10 bright, -10 dark (over-confident)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        halves = torch.stack([x[..., :4].mean(dim=(1, 2, 3)), x[..., 4:].mean(dim=(1, 2, 3))], dim=1)
        return 10 * torch.sign(halves)


def test_calibration_keeps_one_on_val_sets_with_no_error(prepared, capsys):
    # No prior: the plain BCE fit on the val sets.
    params = multilabel_params(calibration={"prior_std": None})
    model = calibrated(HalfBrightness(), prepared, params)
    from selftrain.prediction import predict_split

    logits = predict_split(HalfBrightness(), prepared, prepared.rows("val"), params, logits=True)
    targets = np.array([[float(n in LABEL_SETS[i % 4]) for n in CLASS_NAMES] for i in range(8)])
    # Every val decision is right at +-10: the BCE falls for ever as T -> 0 and has no
    # minimum, so the temperature stays 1 (an unregularised fit would stop at the clip)...
    assert ((logits > 0) == (targets > 0.5)).all()
    assert float(model.temperature) == 1.0
    # ...and the stage says why.
    assert "gets all 8 val items right" in capsys.readouterr().err


def test_calibration_auto_prior_holds_eight_val_sets_near_one(prepared):
    from selftrain.calibration import MIN_TEMPERATURE
    from selftrain.params_schema import DEFAULT_PRIOR_STD
    from selftrain.prediction import predict_split

    # `prior_std: auto` on a val split of 8 sets (< data.min_val_items): the fit is the MAP
    # one under the 0.25 prior (the shipped value on every size), pulled from the BCE's
    # clip back toward T = 1.
    params = multilabel_params(calibration={"prior_std": "auto"})
    assert len(prepared.rows("val")) < params.data.min_val_items
    model = calibrated(HalfBrightness(), prepared, params)
    logits = predict_split(HalfBrightness(), prepared, prepared.rows("val"), params, logits=True)
    targets = np.array([[float(n in LABEL_SETS[i % 4]) for n in CLASS_NAMES] for i in range(8)])
    expected = fit_binary_temperature(logits, targets, prior_std=DEFAULT_PRIOR_STD)
    assert float(model.temperature) == pytest.approx(expected)
    # Pulled from the clip (where an unregularised fit on these error-free sets would go)
    # toward T = 1, still below it: the sets say sharpen.
    assert MIN_TEMPERATURE < float(model.temperature) < 1.0


def test_train_teacher_in_the_multilabel_task(prepared):
    params = multilabel_params(teacher={"unlabeled_threshold": 0.6, "ema_decay": 0.0})
    model, header, history = train_teacher(prepared, params)
    assert [r["epoch"] for r in history] == [1, 2]
    assert 0.0 <= history[-1]["unlabeled_mask"] <= 1.0 and "train_accuracy" in history[-1]
    assert header.class_names == CLASS_NAMES and header.temperature == float(model.temperature)
    assert isinstance(model, Calibrated)
