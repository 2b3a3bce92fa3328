"""Evaluate a generation's model: metrics on test (and val), its calibration, and DVC
confusion rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch import nn

from selftrain.calibration import expected_calibration_error, nll, softmax
from selftrain.config import Params
from selftrain.data import Dataset
from selftrain.metrics import classification_metrics, confusion_rows
from selftrain.models import Calibrated, ModelHeader
from selftrain.prediction import predict_split


def evaluate_model(
    model: nn.Module, header: ModelHeader, dataset: Dataset, params: Params
) -> tuple[dict, pd.DataFrame]:
    """Metrics on test (and val when it exists) plus the test confusion rows for DVC plots.

    `calibration` holds the test NLL and ECE (15 bins) before and after dividing the
    logits by the model's temperature (1.0 for a model that is not `Calibrated`).
    """
    net, temperature = (model.net, float(model.temperature)) if isinstance(model, Calibrated) else (model, 1.0)
    test = dataset.rows("test")
    test_true = test["label"].to_numpy(np.int64)
    test_logits = predict_split(net, dataset, test, params, logits=True)  # (N, C)
    test_pred = test_logits.argmax(axis=1)
    metrics = classification_metrics(test_true, test_pred, dataset.class_names)
    metrics.update(
        generation=header.generation,
        num_parameters=header.num_parameters,
        architecture=header.architecture,
        width=header.width,
        depth=header.depth,
        # Per noise knob, whether the architecture applied it (None: an older checkpoint).
        noise_applied=header.noise_applied,
    )
    metrics["calibration"] = {
        "temperature": temperature,
        "nll_before": nll(test_logits, test_true),
        "nll_after": nll(test_logits, test_true, temperature),
        "ece_before": expected_calibration_error(softmax(test_logits), test_true),
        "ece_after": expected_calibration_error(softmax(test_logits, temperature), test_true),
    }
    val = dataset.rows("val")
    metrics["val_size"] = int(len(val))
    if len(val):
        val_true = val["label"].to_numpy(np.int64)
        val_pred = predict_split(net, dataset, val, params, logits=True).argmax(axis=1)
        val_metrics = classification_metrics(val_true, val_pred, dataset.class_names)
        metrics["val"] = {"accuracy": val_metrics["accuracy"], "macro_f1": val_metrics["macro_f1"]}
    return metrics, confusion_rows(test_true, test_pred, dataset.class_names)
