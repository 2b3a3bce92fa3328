"""The accuracy grid through DVC's experiment queue: names, queue status, and one real run."""

from __future__ import annotations

import json

import pytest

from benchmarks import accuracy_grid
from benchmarks.accuracy_tables import best_by_val
from conftest import dvc, git, make_project, tiny_params

STATUS = """\
Task     Name              Created    Status
c4ffb0b  acc-baseline-0p2-s0  02:22 AM   Running
d1e2f3a  acc-baseline-0p2-s1  02:22 AM   Queued
a0b1c2d  acc-baseline-0p2-s2  02:21 AM   Success
e5f6a7b  other             02:20 AM   Queued

Worker status: 1 active, 0 idle
"""


def test_experiment_names_are_ref_safe_and_say_the_configuration():
    assert accuracy_grid.experiment_name("no_balance", 0.05, 3) == "acc-no_balance-0p05-s3"


def test_unfinished_lists_only_our_queued_or_running_experiments():
    ours = {"acc-baseline-0p2-s0", "acc-baseline-0p2-s1", "acc-baseline-0p2-s2"}
    assert accuracy_grid.unfinished(STATUS, ours) == {"acc-baseline-0p2-s0", "acc-baseline-0p2-s1"}
    assert accuracy_grid.unfinished(STATUS, {"acc-baseline-0p2-s2"}) == set()


@pytest.mark.integration
def test_one_queued_experiment_becomes_a_record_of_the_benchmark_shape(tmp_path):
    params = tiny_params()
    params["data"].update(subset=200)
    params["teacher"].update(epochs=1)
    params["generations"] = {"1": {"teacher": 0, "width": 8, "depth": 1}}
    params["evaluate_generations"] = [0, 1]
    project = make_project(tmp_path / "project", params)
    out = tmp_path / "grid.json"

    code = accuracy_grid.main(
        ["--project", str(project), "--fractions", "0.3", "--seeds", "7", "--poll-seconds", "2",
         "--ablations", "hard_labels", "--no-baseline", "--out", str(out)]
    )  # fmt: skip

    assert code == 0
    (record,) = json.loads(out.read_text())
    assert (record["ablation"], record["fraction"], record["seed"], record["num_generations"]) == (
        "hard_labels", 0.3, 7, 1
    )
    # The -S overrides reached the experiment's params.yaml (what DVC ran with).
    shown = accuracy_grid.shown_experiments(project)["acc-hard_labels-0p3-s7"]
    assert shown["params"]["seed"] == 7
    assert shown["params"]["data"]["labeled_fraction"] == 0.3
    assert shown["params"]["refine"]["soft"] is False
    # The numbers are the experiment's own files, and select_best's choice is the benchmark's.
    gen1 = json.loads(git(project, "show", f"{shown['rev']}:metrics/gen1.json").stdout)
    assert [g["gen"] for g in record["generations"]] == [1]
    assert record["generations"][0]["test_accuracy"] == gen1["accuracy"]
    assert record["best_generation"] == best_by_val(record)[0]
    # 30% of the 160 non-test items of a 200-item subset keep their labels.
    assert record["labeled_rows"] == pytest.approx(0.3 * 160, abs=2)
    # A DVC experiment of the project: `dvc exp apply` / `dvc exp show` reach it like any other.
    assert "acc-hard_labels-0p3-s7" in dvc(project, "exp", "list", "--name-only").stdout
