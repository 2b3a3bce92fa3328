"""The generation gate and the one-run-per-workspace lock."""

from __future__ import annotations

import json
import multiprocessing
import time

import pytest

from selftrain.gate import best_index, best_pointer, decide, tie_tolerance
from selftrain.paths import ProjectPaths
from selftrain.workspace import WorkspaceBusy, hold_workspace


def test_gain_keeps_going():
    decision = decide([0.80, 0.85], min_gain=0.0, patience=1)
    assert not decision.stop and decision.best_generation == 1


def test_regression_stops_with_patience_one():
    decision = decide([0.80, 0.85, 0.83], min_gain=0.0, patience=1)
    assert decision.stop and decision.best_generation == 1
    assert "generation 2 gained -0.0200" in decision.reason and "best is generation 1" in decision.reason


def test_min_gain_counts_small_gains_as_misses():
    assert decide([0.80, 0.805], min_gain=0.01, patience=1).stop
    assert not decide([0.80, 0.82], min_gain=0.01, patience=1).stop


def test_patience_needs_misses_in_a_row():
    assert not decide([0.80, 0.79, 0.85, 0.84], min_gain=0.0, patience=2).stop
    assert decide([0.80, 0.79, 0.78], min_gain=0.0, patience=2).stop


def test_ties_go_to_the_later_generation():
    assert decide([0.9, 0.9], min_gain=-1.0, patience=1).best_generation == 1
    assert best_index([0.9, 0.9, 0.5]) == 1


def test_a_gap_of_one_val_item_is_a_tie_two_are_not():
    # 10 val items: one item is 0.1 of accuracy.
    assert best_index([0.9, 0.8], tolerance=tie_tolerance(10)) == 1
    assert best_index([0.9, 0.7], tolerance=tie_tolerance(10)) == 0
    assert best_index([0.9, 0.8], tolerance=tie_tolerance(100)) == 0
    assert best_index([0.7, 0.9, 0.8], tolerance=tie_tolerance(10)) == 2
    assert decide([0.9, 0.8], min_gain=0.0, patience=2, tolerance=0.1).best_generation == 1


def test_teacher_alone_never_stops():
    assert not decide([0.5], min_gain=0.0, patience=1).stop


def write_val(paths, accuracies, size):
    for gen, val in enumerate(accuracies):
        paths.metrics(gen).parent.mkdir(parents=True, exist_ok=True)
        paths.metrics(gen).write_text(json.dumps({"accuracy": 0.5, "val": {"accuracy": val}, "val_size": size}))


def test_best_pointer_breaks_near_ties_toward_the_later_generation(tmp_path):
    paths = ProjectPaths(tmp_path)
    write_val(paths, [0.9, 0.8, 0.7], size=10)
    pointer = best_pointer(paths, [0, 1, 2])
    assert pointer["generation"] == 1
    assert pointer["val_size"] == 10 and pointer["tie_tolerance"] == pytest.approx(0.1)
    write_val(paths, [0.9, 0.8, 0.7], size=200)
    assert best_pointer(paths, [0, 1, 2])["generation"] == 0


def test_best_pointer_reads_val_not_test(tmp_path):
    paths = ProjectPaths(tmp_path)
    for gen, (val, test) in enumerate([(0.7, 0.9), (0.8, 0.6)]):
        paths.metrics(gen).parent.mkdir(parents=True, exist_ok=True)
        paths.metrics(gen).write_text(json.dumps({"accuracy": test, "val": {"accuracy": val}}))
    pointer = best_pointer(paths, [0, 1])
    assert pointer["generation"] == 1 and pointer["model_dir"] == "models/gen1"


def _hold(project, ready, seconds):
    with hold_workspace(project):
        ready.set()
        time.sleep(seconds)


def test_second_run_gets_a_clear_message(tmp_path):
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(str(tmp_path), ready, 5))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(WorkspaceBusy, match=rf"another selftrain run \(process {holder.pid}, started"):
            with hold_workspace(tmp_path):
                pass
    finally:
        holder.join()


def test_second_run_can_wait_for_the_first(tmp_path):
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(str(tmp_path), ready, 1))
    holder.start()
    assert ready.wait(10)
    started = time.monotonic()
    with hold_workspace(tmp_path, timeout_seconds=30):
        waited = time.monotonic() - started
    holder.join()
    assert 0.5 < waited < 30
