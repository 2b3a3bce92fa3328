"""Multi-label inference: the contract-3 pseudo-label table (sigmoid probs, label sets at
multilabel.threshold / class_thresholds), its part fingerprint, the val table and the ood scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from multilabel_prepared import CLASS_NAMES, LABEL_SETS, multilabel_params, multilabel_raw, write_prepared
from selftrain.data import load_dataset
from selftrain.errors import ConfigError
from selftrain.infer import (
    MULTILABEL_COLUMNS,
    infer_pool,
    label_sets_for,
    pseudo_label_table,
    val_prediction_table,
)
from selftrain.models import Calibrated, create_model, header_for, save_model
from selftrain.ood import OodScorer
from selftrain.prediction import fit_ood_scorer, predict_split
from selftrain.truth import TRUTH_COLUMN

THRESHOLDS = {"threshold": 0.6, "class_thresholds": {"right": 0.3}}


class HalfBrightness(torch.nn.Module):
    """Logits (B, 2): 3 x each half's mean normalised brightness (bright > 0, dark < 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 3 * torch.stack([x[..., :4].mean(dim=(1, 2, 3)), x[..., 4:].mean(dim=(1, 2, 3))], dim=1)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return load_dataset(write_prepared(tmp_path_factory.mktemp("prepared")))


@pytest.fixture(scope="module")
def pool_table(prepared, tmp_path_factory):
    """The round's table of a calibrated (T = 2) HalfBrightness over the pool, in 2 parts."""
    out = tmp_path_factory.mktemp("round") / "pseudo_labels"
    model = Calibrated(HalfBrightness(), 2.0)
    params = multilabel_params(multilabel=THRESHOLDS)
    results = infer_pool(model, prepared, params, 0, out, num_shards=2)
    assert [r.written for r in results] == [True, True]
    logits = predict_split(model, prepared, prepared.unlabeled(), params, logits=True)
    return pd.read_parquet(out), logits, out


def test_pool_table_has_the_multilabel_columns(pool_table, prepared):
    table, _, out = pool_table
    assert tuple(table.columns[: len(MULTILABEL_COLUMNS)]) == MULTILABEL_COLUMNS
    assert not {"pred", "confidence", "margin", "entropy", "labels", "label", "split"} & set(table.columns)
    assert table["item_id"].tolist() == prepared.unlabeled()["item_id"].tolist()
    schema = pq.read_schema(next(out.iterdir()))
    assert schema.field("pred_labels").type == pa.list_(pa.string())
    assert schema.field("scores").type == pa.list_(pa.float64())


def test_probs_are_sigmoids_of_the_calibrated_logits(pool_table):
    table, logits, _ = pool_table
    probs = np.stack(table["probs"].to_numpy())
    assert np.allclose(probs, 1 / (1 + np.exp(-logits)), atol=1e-6)
    # Not a softmax: the empty set's rows sum near 0, both objects' near 2.
    assert probs.sum(axis=1).min() < 0.5 and probs.sum(axis=1).max() > 1.5


def test_pred_labels_are_the_classes_at_their_thresholds(pool_table):
    table, _, _ = pool_table
    probs = np.stack(table["probs"].to_numpy())
    thresholds = np.array([0.6, 0.3])
    chosen = probs >= thresholds
    assert [list(row) for row in table["pred_labels"]] == [
        [name for name, on in zip(CLASS_NAMES, row) if on] for row in chosen
    ]
    assert [list(row) for row in table["scores"]] == [list(p[on]) for p, on in zip(probs, chosen)]
    assert np.allclose(table["min_margin"], np.abs(probs - thresholds).min(axis=1))
    # The tiny pool shows every label set, so each class is predicted somewhere and missed somewhere.
    assert chosen.any(axis=0).all() and (~chosen).any(axis=0).all()


def test_parts_are_kept_until_a_threshold_changes(pool_table, prepared):
    _, _, out = pool_table
    model = Calibrated(HalfBrightness(), 2.0)
    kept = infer_pool(model, prepared, multilabel_params(multilabel=THRESHOLDS), 0, out, num_shards=2)
    assert [r.written for r in kept] == [False, False]
    changed = multilabel_params(multilabel={**THRESHOLDS, "threshold": 0.7})
    assert [r.written for r in infer_pool(model, prepared, changed, 0, out, num_shards=2)] == [True, True]


def test_val_table_carries_the_label_sets_as_truth(prepared):
    params = multilabel_params(multilabel=THRESHOLDS)
    table = val_prediction_table(Calibrated(HalfBrightness(), 2.0), prepared, params, 3)
    assert tuple(table.columns[: len(MULTILABEL_COLUMNS)]) == MULTILABEL_COLUMNS
    assert [list(row) for row in table["true_labels"]] == [list(LABEL_SETS[i % 4]) for i in range(8)]
    assert table[TRUTH_COLUMN].isna().all() and "labels" not in table.columns
    assert (table["teacher_gen"] == 3).all()


def test_an_empty_table_has_the_multilabel_columns():
    pool = pd.DataFrame({"item_id": [], "path": [], "split": []})
    label_sets = label_sets_for(multilabel_params(), CLASS_NAMES)
    table = pseudo_label_table(pool, np.empty((0, 2)), 1, label_sets=label_sets)
    assert tuple(table.columns) == MULTILABEL_COLUMNS


def test_a_bad_threshold_names_the_multilabel_key():
    with pytest.raises(ConfigError, match=r"multilabel\.threshold: must be > 0.0, got 0.0"):
        multilabel_params(multilabel={"threshold": 0.0})
    with pytest.raises(ConfigError, match=r"multilabel\.class_thresholds: unknown class"):
        label_sets_for(multilabel_params(multilabel={"class_thresholds": {"middle": 0.5}}), CLASS_NAMES)
    with pytest.raises(ConfigError, match=r"multilabel\.class_thresholds\.left: expected a number in \(0, 1\)"):
        label_sets_for(multilabel_params(multilabel={"class_thresholds": {"left": 1.0}}), CLASS_NAMES)


@pytest.mark.parametrize("kind", ["mahalanobis", "cosine"])
def test_feature_ood_scores_are_refused_in_the_multilabel_task(prepared, kind):
    with pytest.raises(ConfigError, match=rf"infer.ood_score: '{kind}'.*task multilabel"):
        fit_ood_scorer(HalfBrightness(), prepared, multilabel_params(infer={"ood_score": kind}))


def test_max_prob_reads_the_largest_sigmoid():
    logits = np.array([[2.0, -1.0], [-3.0, -2.0]])
    score = OodScorer("max_prob", task="multilabel").score(logits)
    assert np.allclose(score, 1 - 1 / (1 + np.exp(-np.array([2.0, -2.0]))))


def test_infer_stage_writes_the_multilabel_round(prepared, tmp_path):
    from stages import infer as infer_stage

    params = multilabel_params(multilabel=THRESHOLDS)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(multilabel_raw(multilabel=THRESHOLDS)))
    torch.manual_seed(0)
    net = create_model(8, 1, 0.0, 0.0, 2)
    save_model(Calibrated(net, 1.5), header_for(net, params, prepared, 0, 1.5), tmp_path / "gen0")
    infer_stage.main([
        "--params", str(tmp_path / "params.yaml"), "--gen", "1", "--manifest", str(prepared.root / "manifest.parquet"),
        "--teacher", str(tmp_path / "gen0"), "--out", str(tmp_path / "pseudo_labels"),
        "--val-predictions", str(tmp_path / "val_predictions.parquet"),
    ])  # fmt: skip
    table = pd.read_parquet(tmp_path / "pseudo_labels")
    assert tuple(table.columns[: len(MULTILABEL_COLUMNS)]) == MULTILABEL_COLUMNS and len(table) == 12
    val = pd.read_parquet(tmp_path / "val_predictions.parquet")
    assert "true_labels" in val.columns and len(val) == 8
