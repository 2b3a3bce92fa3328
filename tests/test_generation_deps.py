"""dvc.yaml's per-generation deps of select_best and report against params.yaml's generations."""

from __future__ import annotations

import pytest
import yaml

from selftrain.errors import ConfigError
from selftrain.generation_deps import check_generation_deps, generation_deps


def write_pipeline(tmp_path, select_best_deps, report_deps):
    stages = {
        "select_best": {"cmd": "python -m stages.select_best", "deps": [*select_best_deps, "stages/select_best.py"]},
        "report": {"cmd": "python -m stages.report", "deps": [*report_deps, "stages/report.py"]},
    }
    path = tmp_path / "dvc.yaml"
    path.write_text(yaml.safe_dump({"stages": stages}))
    return path


def test_deps_of_the_same_generations_pass_in_any_order(tmp_path):
    gens = [0, 1, 2]
    path = write_pipeline(tmp_path, generation_deps("select_best", gens)[::-1], generation_deps("report", gens))
    check_generation_deps(path, gens)


def test_report_lists_each_round_and_each_generation():
    assert generation_deps("report", [0, 1]) == [
        "data/gen1/pseudo_labels", "data/gen1/refined.parquet", "data/gen1/rules_report.json",
        "metrics/gen0.json", "metrics/gen1.json",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "listed, message",
    [
        (
            [0, 1, 2, 3],
            "stage select_best's deps also lists metrics/gen3.json, but params.yaml's evaluate_generations is [0, 1, 2]",
        ),
        ([0, 1], "stage select_best's deps lacks metrics/gen2.json, but"),
    ],
)
def test_other_generations_are_one_named_error(tmp_path, listed, message):
    path = write_pipeline(tmp_path, generation_deps("select_best", listed), generation_deps("report", listed))
    with pytest.raises(ConfigError, match=str(path)) as err:
        check_generation_deps(path, [0, 1, 2])
    assert message in str(err.value)


def test_report_is_checked_too(tmp_path):
    path = write_pipeline(tmp_path, generation_deps("select_best", [0, 1]), generation_deps("report", [0, 1, 2]))
    with pytest.raises(ConfigError, match="stage report's deps also lists data/gen2/pseudo_labels"):
        check_generation_deps(path, [0, 1])


def test_unreadable_dvc_yaml_names_the_file(tmp_path):
    path = tmp_path / "dvc.yaml"
    path.write_text("stages: [unclosed\n")
    with pytest.raises(ConfigError, match=f"{path}: cannot read it"):
        check_generation_deps(path, [0, 1])
