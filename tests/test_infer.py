"""Inference summaries and the round table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from conftest import REPO_ROOT
from selftrain.config import DataConfig, load_params
from selftrain.data import prepare_digits
from selftrain.infer import (
    PSEUDO_LABEL_COLUMNS,
    infer_pool,
    pseudo_label_table,
    val_prediction_table,
)
from selftrain.models import Calibrated, create_model
from selftrain.prediction import summarize_probs
from selftrain.truth import TRUTH_COLUMN


def test_summaries_of_known_distributions():
    probs = np.array([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]])
    s = summarize_probs(probs)
    assert s["pred"].tolist() == [0, 0]
    assert np.allclose(s["confidence"], [0.7, 1 / 3])
    assert np.allclose(s["margin"], [0.5, 0.0])
    assert np.isclose(s["entropy"][1], np.log(3))


def test_round_table_carries_metadata_and_truth():
    pool = pd.DataFrame(
        {"item_id": ["a", "b"], "path": ["a.png", "b.png"], "split": "unlabeled",
         "true_label": [1, 0], "group_id": ["g", "g"]}
    )
    table = pseudo_label_table(pool, np.array([[0.1, 0.9], [0.6, 0.4]]), teacher_gen=2)
    assert tuple(table.columns[: len(PSEUDO_LABEL_COLUMNS)]) == PSEUDO_LABEL_COLUMNS
    assert {"true_label", "group_id"} <= set(table.columns) and "split" not in table.columns
    assert table["pred"].tolist() == [1, 0]
    assert table["teacher_gen"].tolist() == [2, 2]


class FixedLogits(torch.nn.Module):
    """Logits (B, C) of 2 on class 0 and 0 elsewhere, whatever the image."""

    def __init__(self, classes: int):
        super().__init__()
        self.classes = classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], self.classes)
        logits[:, 0] = 2.0
        return logits


def test_val_predictions_are_calibrated_and_carry_the_val_truth(tmp_path):
    dataset = prepare_digits(tmp_path, DataConfig(subset=200, labeled_fraction=0.2), seed=0)
    params = load_params(REPO_ROOT / "params.yaml", overrides=["augment.device=cpu"])
    val = dataset.rows("val")
    table = val_prediction_table(Calibrated(FixedLogits(dataset.num_classes), 4.0), dataset, params, 3)
    assert table["item_id"].tolist() == val["item_id"].tolist()
    assert table[TRUTH_COLUMN].tolist() == val["label"].tolist()
    assert (table["teacher_gen"] == 3).all() and "label" not in table.columns
    # softmax of the logits over the temperature: 2 / 4 on class 0.
    expected = np.exp(0.5) / (np.exp(0.5) + dataset.num_classes - 1)
    assert np.allclose(table["confidence"], expected)
    assert list(table.columns[: len(PSEUDO_LABEL_COLUMNS)]) == list(PSEUDO_LABEL_COLUMNS)



def ood_params(kind):
    return load_params(REPO_ROOT / "params.yaml", overrides=["augment.device=cpu", f"infer.ood_score={kind}"])


def test_infer_writes_the_calibrated_logit_scores(tmp_path):
    dataset = prepare_digits(tmp_path / "prepared", DataConfig(subset=200, labeled_fraction=0.2), seed=0)
    model = Calibrated(FixedLogits(dataset.num_classes), 4.0)
    others = dataset.num_classes - 1
    # Calibrated logits: 2 / 4 on class 0, 0 elsewhere.
    expected = {"energy": -np.log(np.exp(0.5) + others), "max_prob": 1 - np.exp(0.5) / (np.exp(0.5) + others)}
    for kind, value in expected.items():
        infer_pool(model, dataset, ood_params(kind), 0, tmp_path / kind, num_shards=2)
        pool = pd.read_parquet(tmp_path / kind)
        assert len(pool) == len(dataset.unlabeled())
        assert np.allclose(pool["ood_score"], value), kind
        val = val_prediction_table(model, dataset, ood_params(kind), 0)
        assert np.allclose(val["ood_score"], value) and len(val) == len(dataset.rows("val")), kind


def test_infer_writes_feature_scores_and_a_new_kind_redoes_the_parts(tmp_path):
    dataset = prepare_digits(tmp_path / "prepared", DataConfig(subset=200, labeled_fraction=0.3), seed=0)
    torch.manual_seed(0)
    model = Calibrated(create_model(8, 1, 0.0, 0.0, dataset.num_classes), 2.0)
    out = tmp_path / "pool"
    scores = {}
    for kind in ("mahalanobis", "cosine"):
        (result,) = infer_pool(model, dataset, ood_params(kind), 0, out, num_shards=1)
        assert result.written, f"{kind}: the part of the other kind was kept"
        scores[kind] = pd.read_parquet(out)["ood_score"].to_numpy()
        assert np.isfinite(scores[kind]).all() and (scores[kind] >= 0).all(), kind
        val = val_prediction_table(model, dataset, ood_params(kind), 0)
        assert np.isfinite(val["ood_score"]).all(), kind
    assert (scores["cosine"] <= 2).all() and not np.allclose(scores["mahalanobis"], scores["cosine"])
    (again,) = infer_pool(model, dataset, ood_params("cosine"), 0, out, num_shards=1)
    assert not again.written
