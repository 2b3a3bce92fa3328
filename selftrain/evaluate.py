"""Evaluate a generation's model: metrics on test (and val), its calibration, and the DVC plot
rows (confusion, per-class AP and F1), for either task.

Multiclass: softmax outputs, accuracy and F1 of the argmax. Multilabel: the probability
of class c is sigmoid(logit_c / T) (T: the model's temperature), targets are the
manifest's ``labels`` sets, and the metrics are those of `selftrain.multilabel_metrics`
at the thresholds infer uses (``multilabel.threshold`` / ``multilabel.class_thresholds``); the
val split's mAP is ``val_map``, what select_best and the gate choose by.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from selftrain.calibration import ece_noise_floor, ece_of_bins, nll, reliability, softmax
from selftrain.config import Params
from selftrain.data import Dataset
from selftrain.errors import DataError
from selftrain.label_columns import LABELS_COLUMN, target_matrix
from selftrain.metrics import classification_metrics, confusion_rows, label_set_confusion_rows, per_class_rows
from selftrain.models import ModelHeader, bare_network
from selftrain.multilabel_metrics import average_precision, multilabel_metrics
from selftrain.multilabel_predictions import decision_thresholds, predicted_sets
from selftrain.prediction import predict_split


@dataclass(frozen=True)
class Evaluation:
    """metrics/gen{k}.json, and the rows of the confusion and per-class DVC plots."""

    metrics: dict
    confusion: pd.DataFrame
    per_class: pd.DataFrame


def evaluate_model(
    model: nn.Module, header: ModelHeader, dataset: Dataset, params: Params
) -> tuple[dict, pd.DataFrame]:
    """Metrics on test (and val when it exists) plus the test confusion rows for DVC plots
    (`evaluate_generation` without the per-class rows)."""
    evaluation = evaluate_generation(model, header, dataset, params)
    return evaluation.metrics, evaluation.confusion


def evaluate_generation(model: nn.Module, header: ModelHeader, dataset: Dataset, params: Params) -> Evaluation:
    """Metrics, confusion rows and per-class rows of a model, by ``params.task``.

    Multiclass `calibration` holds the test NLL and ECE (15 bins) before and after dividing
    the logits by the model's temperature (1.0 for a model that is not `Calibrated`), the
    ECE a calibrated model would read on these rows and the bins of both ECEs;
    multilabel's the test binary cross-entropy before and after.
    """
    net, temperature = bare_network(model)
    if params.task == "multilabel":
        return _evaluate_label_sets(net, temperature, header, dataset, params)
    test = dataset.rows("test")
    test_true = test["label"].to_numpy(np.int64)
    test_logits = predict_split(net, dataset, test, params, logits=True)  # (N, C)
    test_pred = test_logits.argmax(axis=1)
    metrics = classification_metrics(test_true, test_pred, dataset.class_names)
    metrics.update(_model_fields(header))
    test_probs = softmax(test_logits, temperature)
    # The ECE's bins with the raw and the scaled logits: the report's reliability diagram.
    bins_before = reliability(softmax(test_logits), test_true)
    bins_after = reliability(test_probs, test_true)
    metrics["calibration"] = {
        "temperature": temperature,
        "nll_before": nll(test_logits, test_true),
        "nll_after": nll(test_logits, test_true, temperature),
        "ece_before": ece_of_bins(bins_before),
        "ece_after": ece_of_bins(bins_after),
        # What a perfectly calibrated model with these confidences would read on this test
        # split: ECE over a few hundred rows does not go below it.
        "ece_floor": ece_noise_floor(test_probs),
        "test_size": int(len(test_true)),
        "reliability_before": bins_before,
        "reliability_after": bins_after,
    }
    val = dataset.rows("val")
    metrics["val_size"] = int(len(val))
    if len(val):
        val_true = val["label"].to_numpy(np.int64)
        val_pred = predict_split(net, dataset, val, params, logits=True).argmax(axis=1)
        val_metrics = classification_metrics(val_true, val_pred, dataset.class_names)
        metrics["val"] = {"accuracy": val_metrics["accuracy"], "macro_f1": val_metrics["macro_f1"]}
    # One-vs-rest AP of each class from the calibrated softmax: the per-class plot's AP
    # column in both tasks (not in the metrics file, whose multiclass keys stay as they are).
    positives = test_true[:, None] == np.arange(dataset.num_classes)[None, :]  # (N, C)
    ap = [average_precision(test_probs[:, c], positives[:, c]) if positives[:, c].any() else None
          for c in range(dataset.num_classes)]
    return Evaluation(
        metrics=metrics,
        confusion=confusion_rows(test_true, test_pred, dataset.class_names),
        per_class=per_class_rows(dataset.class_names, ap, metrics["per_class"]),
    )


def _evaluate_label_sets(
    net: nn.Module, temperature: float, header: ModelHeader, dataset: Dataset, params: Params
) -> Evaluation:
    names = dataset.class_names
    thresholds = decision_thresholds(params, names)
    test = dataset.rows("test")
    test_targets = _label_targets(dataset, test, "test")  # (N, C) 0/1
    test_logits = predict_split(net, dataset, test, params, logits=True)  # (N, C)
    test_probs = _sigmoid(test_logits, temperature)
    metrics: dict = {"task": "multilabel", **multilabel_metrics(test_probs, test_targets, names, thresholds)}
    metrics.update(_model_fields(header))
    metrics["calibration"] = {
        "temperature": temperature,
        "bce_before": _bce(test_logits, test_targets, 1.0),
        "bce_after": _bce(test_logits, test_targets, temperature),
    }
    val = dataset.rows("val")
    metrics["val_size"] = int(len(val))
    if len(val):
        val_probs = _sigmoid(predict_split(net, dataset, val, params, logits=True), temperature)
        val_metrics = multilabel_metrics(val_probs, _label_targets(dataset, val, "val"), names, thresholds)
        metrics["val_map"] = val_metrics["map"]
        metrics["val"] = {key: val_metrics[key] for key in ("map", "micro_f1", "macro_f1", "exact_match")}
    predicted = predicted_sets(test_probs, thresholds)
    ap = [entry["ap"] for entry in metrics["per_class"].values()]
    return Evaluation(
        metrics=metrics,
        confusion=label_set_confusion_rows(test_targets.astype(bool), predicted, names),
        per_class=per_class_rows(names, ap, metrics["per_class"]),
    )


def _model_fields(header: ModelHeader) -> dict:
    return {
        "generation": header.generation,
        "num_parameters": header.num_parameters,
        "architecture": header.architecture,
        "width": header.width,
        "depth": header.depth,
        # Per noise knob, whether the architecture applied it (None: an older checkpoint).
        "noise_applied": header.noise_applied,
    }


def _label_targets(dataset: Dataset, rows: pd.DataFrame, split: str) -> np.ndarray:
    """(N, C) 0/1 targets of a split's ``labels`` sets; a manifest without the column is named."""
    where = f"{dataset.root / 'manifest.parquet'} ({split} rows)"
    if LABELS_COLUMN not in rows.columns:
        raise DataError(f"{where}: no {LABELS_COLUMN!r} column; task multilabel evaluates label sets")
    return target_matrix(rows[LABELS_COLUMN].tolist(), dataset.class_names, where)


def _sigmoid(logits: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logits / T), (N, C) float64."""
    return torch.sigmoid(torch.from_numpy(np.asarray(logits, dtype=np.float64)) / temperature).numpy()


def _bce(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    """Mean binary cross-entropy over (row, class) of sigmoid(logits / T) against 0/1 targets."""
    scaled = torch.from_numpy(np.asarray(logits, dtype=np.float64)) / temperature
    return float(F.binary_cross_entropy_with_logits(scaled, torch.from_numpy(targets.astype(np.float64))))
