"""Out-of-distribution scores on planted in/out data, and the penultimate-feature hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from selftrain.config import load_params
from selftrain.errors import ConfigError
from selftrain.models import Calibrated, create_model
from selftrain.ood import (
    Centroids,
    OodScorer,
    capture_features,
    cosine_score,
    energy_score,
    ledoit_wolf_covariance,
    mahalanobis_score,
    max_prob_score,
    score_kind,
)
from conftest import REPO_ROOT

CLASSES, DIM = 3, 6


def planted_features(rng, per_class=30):
    """Labeled features around three centroids, spread wide along axis 0 only; in-distribution
    test points drawn the same way; OOD points at the centroids but far out along axis 5,
    where the labeled data barely varies (near in Euclidean terms, far for Mahalanobis)."""
    means = np.zeros((CLASSES, DIM))
    means[:, 1:4] = 5 * np.eye(CLASSES)
    scale = np.array([3.0, 0.2, 0.2, 0.2, 0.2, 0.2])

    def draw(n):
        labels = np.repeat(np.arange(CLASSES), n)
        return means[labels] + rng.normal(size=(len(labels), DIM)) * scale, labels

    labeled, labels = draw(per_class)
    inside, _ = draw(10)
    outside = means[np.arange(CLASSES).repeat(5)].copy()
    outside[:, 5] = 2.5  # 12.5 standard deviations off along axis 5; 2.5 in plain distance
    return labeled, labels, inside, outside


def test_mahalanobis_scores_planted_outliers_higher():
    labeled, labels, inside, outside = planted_features(np.random.default_rng(0))
    centroids = Centroids.fit(labeled, labels, CLASSES)
    assert mahalanobis_score(outside, centroids).min() > mahalanobis_score(inside, centroids).max()
    # Plain Euclidean distance would not separate them: the in-distribution spread along
    # axis 0 is larger than the outliers' offset.
    euclid = lambda x: np.linalg.norm(x[:, None, :] - centroids.means[None], axis=2).min(axis=1)  # noqa: E731
    assert euclid(outside).min() < euclid(inside).max()


def test_mahalanobis_shrinkage_keeps_a_tiny_labeled_set_usable():
    # Two labeled rows per class in 20 dimensions: the sample covariance is singular.
    rng = np.random.default_rng(1)
    means = 4 * np.eye(CLASSES, 20)
    labels = np.repeat(np.arange(CLASSES), 2)
    labeled = means[labels] + 0.3 * rng.normal(size=(len(labels), 20))
    inside = means[np.repeat(np.arange(CLASSES), 4)] + 0.3 * rng.normal(size=(12, 20))
    outside = 4 * rng.normal(size=(12, 20))
    centroids = Centroids.fit(labeled, labels, CLASSES)
    inside_scores, outside_scores = mahalanobis_score(inside, centroids), mahalanobis_score(outside, centroids)
    assert np.isfinite(inside_scores).all() and np.isfinite(outside_scores).all()
    assert outside_scores.min() > inside_scores.max()


@pytest.mark.parametrize("rows, features", [(40, 8), (12, 30), (200, 1)])
def test_ledoit_wolf_equals_scikit_learn(rows, features):
    from sklearn.covariance import ledoit_wolf

    rng = np.random.default_rng(rows)
    x = rng.normal(size=(rows, features)) @ rng.normal(size=(features, features))
    x = x - x.mean(axis=0)
    expected, _ = ledoit_wolf(x, assume_centered=True)
    np.testing.assert_allclose(ledoit_wolf_covariance(x), expected, rtol=1e-10, atol=1e-12)


def test_cosine_scores_points_off_every_centroid_direction_higher():
    labeled, labels, inside, _ = planted_features(np.random.default_rng(2))
    centroids = Centroids.fit(labeled, labels, CLASSES)
    outside = np.zeros((4, DIM))
    outside[:, 4:] = [[1, 0], [0, 1], [3, 3], [-2, 5]]  # orthogonal to every centroid
    assert cosine_score(outside, centroids).min() > cosine_score(inside, centroids).max()
    assert np.allclose(cosine_score(centroids.means, centroids), 0.0)


def test_a_class_without_labeled_rows_is_named():
    with pytest.raises(Exception, match="no labeled row of class index 2"):
        Centroids.fit(np.zeros((4, 3)), np.array([0, 0, 1, 1]), 3)


def test_max_prob_and_energy_score_flat_logits_higher():
    rng = np.random.default_rng(3)
    confident = rng.normal(size=(20, 5))
    confident[np.arange(20), rng.integers(0, 5, 20)] += 8.0  # one class stands out
    flat = 0.1 * rng.normal(size=(20, 5))  # no class stands out
    softmax = lambda z: torch.softmax(torch.as_tensor(z), dim=1).numpy()  # noqa: E731
    assert max_prob_score(softmax(flat)).min() > max_prob_score(softmax(confident)).max()
    assert energy_score(flat).min() > energy_score(confident).max()
    assert np.allclose(energy_score(np.zeros((1, 2))), -np.log(2))
    assert np.allclose(max_prob_score(np.array([[0.7, 0.3]])), 0.3)


def test_scorer_dispatches_by_kind():
    logits = np.array([[4.0, 0.0, 0.0], [0.1, 0.0, 0.0]])
    assert OodScorer("energy").score(logits).tolist() == energy_score(logits).tolist()
    probs = torch.softmax(torch.as_tensor(logits), dim=1).numpy()
    assert np.allclose(OodScorer("max_prob").score(logits), max_prob_score(probs))
    with pytest.raises(ConfigError, match="infer.ood_score: must be one of"):
        OodScorer("odin")


def test_capture_reads_the_input_of_the_last_linear():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(5, 4)
    with capture_features(Calibrated(net, 2.0)) as capture:
        Calibrated(net, 2.0)(x)
    expected = torch.relu(net[0](x)).detach().numpy()
    assert capture.features.shape == (5, 8)
    np.testing.assert_allclose(capture.features, expected, rtol=1e-6)
    # The hook is gone afterwards: another call leaves the capture as it was.
    net(torch.zeros(2, 4))
    assert capture.features.shape == (5, 8)


def test_capture_on_resnet_s3_gives_its_feature_width():
    model = create_model(8, 1, 0.0, 0.0, 10).eval()
    with capture_features(model) as capture:
        model(torch.zeros(2, 3, 16, 16))
    assert capture.features.shape == (2, model.feature_dim)


def test_a_model_without_a_linear_layer_is_refused_for_feature_scores():
    with pytest.raises(ConfigError, match="nn.Linear"):
        with capture_features(nn.Sequential(nn.Flatten())):
            pass


@pytest.mark.parametrize(
    "task, setting, model, expected",
    [
        ("multiclass", "auto", "resnet", "mahalanobis"),
        ("multilabel", "auto", "resnet", "energy"),
        ("multiclass", "auto", "no_linear", "energy"),
        ("multiclass", "max_prob", "resnet", "max_prob"),
        ("multilabel", "cosine", "resnet", "cosine"),
    ],
)
def test_auto_score_is_mahalanobis_where_it_can_run_else_energy(task, setting, model, expected):
    params = load_params(
        REPO_ROOT / "params.yaml",
        overrides=[f"task={task}", f"infer.ood_score={setting}"]
        + (["data.source=digits-mosaic"] if task == "multilabel" else []),
    )
    net = create_model(8, 1, 0.0, 0.0, 10) if model == "resnet" else nn.Sequential(nn.Conv2d(3, 10, 1), nn.Flatten())
    assert score_kind(params, net) == expected
