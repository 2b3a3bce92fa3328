"""Evaluate a generation's model: metrics on test (and val) plus DVC confusion rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch import nn

from selftrain.config import Params
from selftrain.data import Dataset
from selftrain.infer import predict_split
from selftrain.metrics import classification_metrics, confusion_rows
from selftrain.models import ModelHeader


def evaluate_model(
    model: nn.Module, header: ModelHeader, dataset: Dataset, params: Params
) -> tuple[dict, pd.DataFrame]:
    """Metrics on test (and val when it exists) plus the test confusion rows for DVC plots."""
    test = dataset.rows("test")
    test_true = test["label"].to_numpy(np.int64)
    test_pred = predict_split(model, dataset, test, params).argmax(axis=1)
    metrics = classification_metrics(test_true, test_pred, dataset.class_names)
    metrics.update(
        generation=header.generation,
        num_parameters=header.num_parameters,
        width=header.width,
        depth=header.depth,
    )
    val = dataset.rows("val")
    if len(val):
        val_true = val["label"].to_numpy(np.int64)
        val_pred = predict_split(model, dataset, val, params).argmax(axis=1)
        val_metrics = classification_metrics(val_true, val_pred, dataset.class_names)
        metrics["val"] = {"accuracy": val_metrics["accuracy"], "macro_f1": val_metrics["macro_f1"]}
    return metrics, confusion_rows(test_true, test_pred, dataset.class_names)
