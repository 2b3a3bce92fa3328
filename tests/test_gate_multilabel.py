"""select_best and the gate in a multilabel run: they choose by val mAP (`val_map`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selftrain.errors import DataError
from selftrain.gate import best_pointer, decide, metric_name, summary_metrics, val_score
from selftrain.paths import ProjectPaths
from stages import select_best


def write_multilabel(paths, generations, size=10):
    """metrics/gen{k}.json of a multilabel run: (val_map, val accuracy-like noise, test map) per gen."""
    for gen, (val_map, val_micro_f1, test_map) in enumerate(generations):
        paths.metrics(gen).parent.mkdir(parents=True, exist_ok=True)
        paths.metrics(gen).write_text(json.dumps({
            "task": "multilabel", "map": test_map, "micro_f1": test_map - 0.1, "val_map": val_map,
            "val": {"map": val_map, "micro_f1": val_micro_f1}, "val_size": size,
        }))


def test_best_pointer_chooses_by_val_map_not_val_f1_or_test(tmp_path):
    paths = ProjectPaths(tmp_path)
    # Gen 1 has the best val mAP; gen 0 the best val micro-F1, gen 2 the best test mAP.
    write_multilabel(paths, [(0.60, 0.95, 0.70), (0.90, 0.50, 0.72), (0.70, 0.60, 0.99)], size=100)
    pointer = best_pointer(paths, [0, 1, 2])
    assert pointer["generation"] == 1
    assert pointer["metric"] == "val_map" and pointer["val_map"] == 0.90
    assert pointer["test_map"] == 0.72 and pointer["test_micro_f1"] == pytest.approx(0.62)
    assert pointer["candidates"] == {"0": 0.60, "1": 0.90, "2": 0.70}
    assert "val_accuracy" not in pointer


def test_val_map_has_no_near_tie_only_exact_ties_go_later(tmp_path):
    paths = ProjectPaths(tmp_path)
    # With 10 val items a multiclass run calls 0.80 vs 0.79 a tie; val mAP does not.
    write_multilabel(paths, [(0.80, 0.5, 0.7), (0.79, 0.5, 0.7), (0.80, 0.5, 0.7), (0.5, 0.5, 0.7)], size=10)
    pointer = best_pointer(paths, [0, 1, 3])
    assert pointer["generation"] == 0 and pointer["tie_tolerance"] == 0.0
    assert best_pointer(paths, [0, 1, 2])["generation"] == 2


def test_summary_lists_map_and_micro_f1(tmp_path):
    paths = ProjectPaths(tmp_path)
    write_multilabel(paths, [(0.6, 0.5, 0.7), (0.8, 0.5, 0.75)], size=100)
    summary = summary_metrics(paths, [0, 1], best_pointer(paths, [0, 1]))
    assert summary == {
        "best_generation": 1, "best_val_map": 0.8, "best_test_map": 0.75,
        "test_map": {"0": 0.7, "1": 0.75}, "test_micro_f1": {"0": pytest.approx(0.6), "1": pytest.approx(0.65)},
    }


def test_the_gate_reads_val_map_and_names_it(tmp_path):
    paths = ProjectPaths(tmp_path)
    write_multilabel(paths, [(0.8, 0.99, 0.7), (0.7, 0.99, 0.7)])
    scores = [val_score(paths, 0), val_score(paths, 1)]
    assert scores == [0.8, 0.7]
    decision = decide(scores, min_gain=0.0, patience=1, metric=metric_name(paths, 1))
    assert decision.stop and "gained -0.1000 val mAP" in decision.reason


def test_select_best_stage_writes_the_val_map_pointer(tmp_path, monkeypatch, capsys):
    paths = ProjectPaths(tmp_path)  # the shipped params.yaml: generations 0..3
    write_multilabel(paths, [(0.6, 0.5, 0.7), (0.8, 0.5, 0.7), (0.7, 0.5, 0.7), (0.65, 0.5, 0.7)], size=100)
    monkeypatch.chdir(tmp_path)
    repo_params = Path(select_best.__file__).resolve().parents[1] / "params.yaml"
    select_best.main(["--params", str(repo_params), "--root", str(tmp_path),
                      "--out", str(tmp_path / "best.json"), "--summary", str(tmp_path / "summary.json")])
    assert json.loads((tmp_path / "best.json").read_text())["generation"] == 1
    assert "val mAP 0.8000" in capsys.readouterr().out


def test_a_null_val_map_and_mixed_tasks_are_named(tmp_path):
    paths = ProjectPaths(tmp_path)
    write_multilabel(paths, [(None, 0.5, 0.7), (0.8, 0.5, 0.7)])
    with pytest.raises(DataError, match=r"gen0.json: val_map is null"):
        val_score(paths, 0)
    paths.metrics(0).write_text(json.dumps({"accuracy": 0.5, "val": {"accuracy": 0.6}, "val_size": 10}))
    with pytest.raises(DataError, match=r"gen1.json is multilabel, .*gen0.json multiclass"):
        best_pointer(paths, [0, 1])
