"""The learner benchmark's tables (benchmarks/learner_tables.py) on hand-made records."""

from __future__ import annotations

import json

from benchmarks.learner_tables import attach_ceilings, best_by_val, calibration_table, gap_table, main


def record(seed, supervised, teacher, gens, fraction=0.02, ceiling=None, teacher_val=0.5):
    return {
        "fraction": fraction,
        "seed": seed,
        "ablation": "baseline",
        "overrides": [],
        "supervised": supervised,
        "teacher": teacher,
        "teacher_val": teacher_val,
        "ceiling": ceiling,
        "generations": [
            {"gen": k + 1, "test_accuracy": test, "val_accuracy": val} for k, (test, val) in enumerate(gens)
        ],
        "teacher_calibration": {"temperature": 2.0, "ece_before": 0.1, "ece_after": 0.04, "nll_before": 1.0, "nll_after": 0.5},
    }


def test_best_by_val_counts_the_teacher_and_breaks_ties_toward_later_generations():
    r = record(0, 0.8, 0.9, [(0.91, 0.7), (0.95, 0.7)], teacher_val=0.6)
    assert best_by_val(r) == (2, 0.95)
    assert best_by_val(record(0, 0.8, 0.9, [(0.85, 0.5)], teacher_val=0.6)) == (0, 0.9)


def test_gap_share_is_measured_from_the_supervised_teacher():
    # (0.94 - 0.80) / (1.00 - 0.80) = 70%
    rows = [record(0, 0.80, 0.90, [(0.94, 0.9)]), record(1, 0.80, 0.90, [(0.90, 0.9)])]
    attach_ceilings(rows, [{"fraction": 0.02, "seed": 0, "ceiling": 1.0}, {"fraction": 0.02, "seed": 1, "ceiling": 1.0}])
    table = gap_table(rows)
    assert "| 0.02 | 0 | 80.00 | 90.00 | 1 | 94.00 | 100.00 | 70% | +4.00 |" in table
    assert "| 0.02 | 1 | 80.00 | 90.00 | 1 | 90.00 | 100.00 | 50% | +0.00 |" in table
    assert table.splitlines()[-1].endswith("| 60% | +2.00 |")  # the mean of 70% and 50%


def test_calibration_table_says_whether_ece_halved():
    rows = [record(0, 0.8, 0.9, [])]
    # A record without the calibrated model's reading shows "-" for it.
    assert "| 0.02 | 0 | 2.00 | 10.00% | 4.00% | yes (1 of 1 seeds) | - | 1.000 | 0.500 |" in calibration_table(rows)


def test_calibration_table_shows_the_calibrated_reading_when_every_seed_has_it():
    rows = [record(0, 0.8, 0.9, []), record(1, 0.8, 0.9, [])]
    rows[0]["teacher_calibration"]["ece_floor"] = 0.03
    assert "| yes (2 of 2 seeds) | - |" in calibration_table(rows)
    rows[1]["teacher_calibration"]["ece_floor"] = 0.05
    assert "| yes (2 of 2 seeds) | 4.00% |" in calibration_table(rows)


def test_a_records_file_holding_ceiling_only_records_takes_its_ceilings_from_them(tmp_path, capsys):
    # `benchmarks.accuracy --merge` of a run and a `--ceiling-only` file: one records file.
    rows = [record(0, 0.80, 0.90, [(0.94, 0.9)])]
    rows[0]["generations"][0]["calibration"] = rows[0]["teacher_calibration"]
    rows.append({"fraction": 0.02, "seed": 0, "ablation": "ceiling", "overrides": [], "ceiling": 1.0})
    path = tmp_path / "merged.json"
    path.write_text(json.dumps(rows))
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "| 0.02 | 0 | 80.00 | 90.00 | 1 | 94.00 | 100.00 | 70% | +4.00 |" in out
    assert "| ceiling (" not in out  # not an ablation row (they read "| name (`overrides`) |")
    # A --ceilings file given as well wins over the records' own.
    other = tmp_path / "ceilings.json"
    other.write_text(json.dumps([{"fraction": 0.02, "seed": 0, "ablation": "ceiling", "overrides": [], "ceiling": 0.98}]))
    assert main([str(path), "--ceilings", str(other)]) == 0
    assert "| 0.02 | 0 | 80.00 | 90.00 | 1 | 94.00 | 98.00 | 78% | +4.00 |" in capsys.readouterr().out
