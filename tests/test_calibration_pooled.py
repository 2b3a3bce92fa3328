"""benchmarks/calibration_pooled: pooling planted models' test logits over seeds."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.calibration_pooled import ModelLogits, load_logits, pooled_row, pooled_rows, refit
from selftrain.calibration import expected_calibration_error, fit_temperature, softmax


def planted(seed: int, rows: int, scale: float, temperature: float, gen: int = 0, fraction: float = 0.05):
    """Labels drawn from softmax(base); the model's logits are `scale` x base, so it is
    calibrated at T = scale. `temperature` is what its val fit is said to have found."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(rows, 5)) * 2.0
    probs = softmax(base)
    labels = np.array([rng.choice(5, p=p) for p in probs])
    return ModelLogits("baseline", fraction, seed, gen, scale * base, labels, temperature)


def save(directory, m: ModelLogits) -> None:
    np.savez(
        directory / f"{m.ablation}_f{m.fraction}_s{m.seed}_gen{m.generation}.npz",
        logits=m.logits,
        labels=m.labels,
        temperature=m.temperature,
    )


def test_pooled_rows_scale_each_model_by_its_own_temperature():
    # Two over-confident models, each with a different correct temperature.
    models = [planted(0, 1500, 3.0, 3.0), planted(1, 1500, 2.0, 2.0)]
    row = pooled_row(models, draws=200)
    assert row["rows"] == 3000 and row["seeds"] == [0, 1]
    # "after" is each model scaled by its own T, pooled: the planted-calibrated case.
    after = np.concatenate([softmax(m.logits, m.temperature) for m in models])
    labels = np.concatenate([m.labels for m in models])
    assert row["ece_after"] == pytest.approx(expected_calibration_error(after, labels))
    assert row["ece_after"] < row["ece_before"] / 3
    assert row["nll_after"] < row["nll_before"]
    # Calibrated after scaling: the reading sits near what a calibrated model reads.
    assert row["ece_after"] < 2 * row["calibrated_ece_floor"]
    assert row["calibrated_share_at_most_half"] > 0.9
    # One temperature shared by a T = 2 and a T = 3 model: the best lies between the two,
    # and the reported minimum is the ECE at that temperature, below T = 1's and the grid's ends.
    raw = np.concatenate([m.logits for m in models])
    assert 2.0 < row["argmin_temperature"] < 3.0
    assert row["min_ece_one_temperature"] == pytest.approx(
        expected_calibration_error(softmax(raw, row["argmin_temperature"]), labels)
    )
    for t in (1.0, 0.5, 4.0):
        assert row["min_ece_one_temperature"] < expected_calibration_error(softmax(raw, t), labels)


def test_a_wrong_fitted_temperature_is_not_called_calibrated():
    row = pooled_row([planted(0, 3000, 3.0, 1.0)], draws=200)
    assert row["ece_after"] == row["ece_before"]
    assert row["ece_before"] > 3 * row["calibrated_ece_floor"]
    # The bound column ignores the val fit: the model's own test rows choose T near 3,
    # and the ECE it reads is the one at that temperature.
    m = planted(0, 3000, 3.0, 1.0)
    own = fit_temperature(m.logits, m.labels)
    assert own == pytest.approx(3.0, rel=0.15)
    assert row["ece_after_test_fitted"] == pytest.approx(
        expected_calibration_error(softmax(m.logits, own), m.labels)
    )
    assert row["ece_after_test_fitted"] < row["ece_before"] / 3


def test_the_test_fitted_bound_fits_each_model_on_its_own_rows():
    # A T = 3 and a T = 1.5 model: one shared temperature cannot calibrate both, each its own can.
    models = [planted(0, 2000, 3.0, 1.0), planted(1, 2000, 1.5, 1.0)]
    row = pooled_row(models, draws=100)
    assert row["ece_after_test_fitted"] < row["min_ece_one_temperature"]
    assert row["ece_after_test_fitted"] < 2 * row["calibrated_ece_floor"]


def test_files_group_by_fraction_and_generation(tmp_path):
    for seed in (0, 1, 2):
        for gen in (0, 1):
            save(tmp_path, planted(seed, 50, 1.0, 1.0, gen=gen, fraction=0.02))
    save(tmp_path, planted(0, 50, 1.0, 1.0, gen=0, fraction=0.05))
    (tmp_path / "baseline_f0.05_s1_gen0.npz.partial.npz").write_bytes(b"killed mid-write")
    rows = pooled_rows(load_logits(tmp_path))
    assert [(r["fraction"], r["generation"], r["rows"]) for r in rows] == [
        (0.05, 0, 50),
        (0.02, 0, 150),
        (0.02, 1, 150),
    ]
    assert rows[1]["seeds"] == [0, 1, 2]


def test_a_file_with_another_name_is_named_in_the_error(tmp_path):
    np.savez(tmp_path / "teacher.npz", logits=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="teacher.npz"):
        load_logits(tmp_path)


def test_a_file_without_its_temperature_is_named_in_the_error(tmp_path):
    np.savez(tmp_path / "baseline_f0.02_s0_gen1.npz", logits=np.zeros((1, 2)), labels=np.zeros(1))
    with pytest.raises(ValueError, match=r"baseline_f0.02_s0_gen1.npz: missing \['temperature'\]"):
        load_logits(tmp_path)


def test_refit_finds_the_planted_temperature_on_val_and_names_files_without_val(tmp_path):
    m = planted(0, 600, 3.0, 1.0)
    val = planted(1, 600, 3.0, 1.0)
    with_val = ModelLogits(
        m.ablation, m.fraction, m.seed, m.generation, m.logits, m.labels, 1.0, "x.npz", val.logits, val.labels
    )
    (refitted,) = refit([with_val], prior_std=None)
    assert refitted.temperature == pytest.approx(3.0, rel=0.15)
    assert pooled_row([refitted], draws=100)["ece_after"] < pooled_row([with_val], draws=100)["ece_after"] / 2
    # A strong prior holds the temperature near 1.
    (held,) = refit([with_val], prior_std=0.01)
    assert held.temperature < 1.1
    save(tmp_path, m)
    with pytest.raises(ValueError, match="baseline_f0.05_s0_gen0.npz: no val_logits"):
        refit(load_logits(tmp_path), prior_std=None)
