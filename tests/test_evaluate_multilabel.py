"""evaluate in a multilabel run (sigmoid of scripted logits against the manifest's label sets),
and the per-class plot rows of both tasks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import tiny_params
from selftrain.config import DataConfig, params_from_dict
from selftrain.data import load_dataset, prepare_digits
from selftrain.errors import ConfigError, DataError
from selftrain.evaluate import evaluate_generation
from selftrain.multilabel_predictions import decision_thresholds
from selftrain.label_columns import join_labels, target_matrix
from selftrain.metrics import NO_LABEL
from selftrain.models import Calibrated, ModelHeader
from test_evaluate import ScriptedModel, one_hot_logits


def multilabel_params(**thresholds):
    raw = tiny_params()
    raw["task"] = "multilabel"
    raw["data"].update(source="digits-mosaic", subset=0)
    raw["infer"]["batch_size"] = 8  # several batches per split
    raw["augment"]["device"] = "cpu"
    raw["multilabel"].update(threshold=0.5, **thresholds)
    return params_from_dict(raw)


@pytest.fixture(scope="module")
def label_set_dataset(tmp_path_factory):
    """Digits with a `labels` column (contract 1): each labeled/val/test image carries its
    digit, even rows also the next digit, every fifth row no label at all."""
    folder = tmp_path_factory.mktemp("eval_multilabel")
    prepare_digits(folder, DataConfig(subset=120, labeled_fraction=0.2), seed=0)
    manifest = pd.read_parquet(folder / "manifest.parquet")
    names = [str(d) for d in range(10)]
    cells = []
    for i, (split, label) in enumerate(zip(manifest["split"], manifest["label"])):
        if split == "unlabeled":
            cells.append(None)
        elif i % 5 == 0:
            cells.append("")
        else:
            digits = {int(label), (int(label) + 1) % 10} if i % 2 == 0 else {int(label)}
            cells.append(join_labels([names[d] for d in sorted(digits)]))
    manifest["labels"] = cells
    manifest["label"] = pd.array([None] * len(manifest), dtype="Int64")
    manifest.to_parquet(folder / "manifest.parquet")
    return load_dataset(folder / "manifest.parquet")


def test_metrics_file_has_contract_5_keys_and_hand_counted_values(label_set_dataset):
    dataset = label_set_dataset
    names = dataset.class_names
    test_targets = target_matrix(dataset.rows("test")["labels"].tolist(), names, "test")
    val_targets = target_matrix(dataset.rows("val")["labels"].tolist(), names, "val")
    # Logits +4 on the true classes, -4 elsewhere; test row 0 also predicts a class it lacks.
    test_logits = np.where(test_targets > 0, 4.0, -4.0)
    wrong = int(np.flatnonzero(test_targets[0] == 0)[0])
    test_logits[0, wrong] = 4.0
    val_logits = np.where(val_targets > 0, 4.0, -4.0)
    model = Calibrated(ScriptedModel(torch.from_numpy(np.concatenate([test_logits, val_logits]).astype(np.float32))), 2.0)
    header = ModelHeader("resnet", 8, 1, 10, names, 16, generation=1, num_parameters=99)

    evaluation = evaluate_generation(model, header, dataset, multilabel_params())
    metrics = evaluation.metrics

    assert {"task", "map", "micro_f1", "macro_f1", "exact_match", "per_class", "val_map", "val"} <= set(metrics)
    assert metrics["task"] == "multilabel" and "accuracy" not in metrics
    positives = int(test_targets.sum())
    # sigmoid(4 / 2) = 0.88 >= 0.5: every true class is found, one false one added.
    assert metrics["micro_f1"] == pytest.approx(2 * positives / (2 * positives + 1))
    assert metrics["exact_match"] == pytest.approx((len(test_targets) - 1) / len(test_targets))
    assert metrics["per_class"][names[wrong]]["predicted"] == int(test_targets[:, wrong].sum()) + 1
    assert metrics["val_map"] == pytest.approx(1.0) and metrics["val"]["map"] == metrics["val_map"]
    assert metrics["val"]["micro_f1"] == pytest.approx(1.0)
    assert metrics["calibration"]["temperature"] == 2.0
    assert metrics["val_size"] == len(val_targets) and metrics["generation"] == 1
    # The confusion analogue: one row per true or predicted (image, class); the false label
    # of row 0 is ("(none)", its class).
    confusion = evaluation.confusion
    assert len(confusion) == positives + 1
    assert ((confusion["actual"] == NO_LABEL) & (confusion["predicted"] == names[wrong])).sum() == 1
    assert (confusion["predicted"] == NO_LABEL).sum() == 0
    per_class = evaluation.per_class
    assert per_class.columns.tolist() == ["class", "ap", "f1", "support"]
    assert per_class["support"].tolist() == test_targets.sum(axis=0).astype(int).tolist()
    assert per_class.set_index("class")["ap"].to_dict() == pytest.approx(
        {name: entry["ap"] for name, entry in metrics["per_class"].items()}
    )


def test_a_manifest_without_label_sets_is_named(tmp_path):
    dataset = prepare_digits(tmp_path, DataConfig(subset=120, labeled_fraction=0.2), seed=0)
    model = ScriptedModel(torch.zeros(120, 10))
    header = ModelHeader("resnet", 8, 1, 10, dataset.class_names, 16, generation=0, num_parameters=1)
    with pytest.raises(DataError, match=r"manifest.parquet \(test rows\): no 'labels' column"):
        evaluate_generation(model, header, dataset, multilabel_params())


def test_thresholds_come_from_the_multilabel_section_and_a_bad_one_names_its_key():
    names = ("a", "b", "c")
    assert decision_thresholds(multilabel_params(class_thresholds={"b": 0.8}), names).tolist() == [0.5, 0.8, 0.5]
    with pytest.raises(ConfigError, match=r"multilabel.class_thresholds: unknown class"):
        decision_thresholds(multilabel_params(class_thresholds={"z": 0.8}), names)


def test_multiclass_per_class_rows_give_one_vs_rest_ap_and_f1(tmp_path):
    raw = tiny_params()
    raw["infer"]["batch_size"] = 8
    raw["augment"]["device"] = "cpu"
    dataset = prepare_digits(tmp_path, DataConfig(subset=120, labeled_fraction=0.2), seed=0)
    test_truth = dataset.rows("test")["label"].to_numpy(np.int64)
    val_truth = dataset.rows("val")["label"].to_numpy(np.int64)
    test_pred = test_truth.copy()
    test_pred[0] = (test_truth[0] + 1) % 10  # one false positive of this class
    model = ScriptedModel(one_hot_logits(np.concatenate([test_pred, val_truth]), 10))
    header = ModelHeader("resnet", 8, 1, 10, dataset.class_names, 16, generation=0, num_parameters=1)

    evaluation = evaluate_generation(model, header, dataset, params_from_dict(raw))

    assert "task" not in evaluation.metrics  # the multiclass metrics file keeps its keys
    rows = evaluation.per_class.set_index("class")
    untouched = [c for c in set(test_truth.tolist()) - {int(test_truth[0]), int(test_pred[0])}]
    assert rows.loc[dataset.class_names[test_pred[0]], "ap"] < 1.0
    assert rows.loc[[dataset.class_names[c] for c in untouched], "ap"].tolist() == pytest.approx([1.0] * len(untouched))
    assert rows["f1"].tolist() == [evaluation.metrics["per_class"][n]["f1"] for n in dataset.class_names]
