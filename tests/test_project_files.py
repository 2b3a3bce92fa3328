"""dvc.yaml, params.yaml, paths.py, the flow and the README agree with each other."""

from __future__ import annotations

import re

import yaml

from conftest import REPO_ROOT, dvc
from flows.loop import REPORT_STAGE, SELECT_BEST_STAGE, stage_order
from selftrain.config import load_params
from selftrain.paths import ProjectPaths

DVC_YAML = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def test_dvc_expands_exactly_the_flow_stages():
    listed = dvc(REPO_ROOT, "stage", "list", "--name-only").stdout.split()
    n = load_params(REPO_ROOT / "params.yaml").num_generations
    assert sorted(listed) == sorted(stage_order(n) + [SELECT_BEST_STAGE, REPORT_STAGE])


def _key_exists(dotted: str) -> bool:
    node = PARAMS
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_every_declared_param_exists():
    for name, stage in DVC_YAML["stages"].items():
        body = stage.get("do", stage)
        for key in body.get("params", []):
            keys = [key.replace("${key}", k) for k in PARAMS["generations"]] if "${key}" in key else [key]
            for k in keys:
                assert _key_exists(k), f"dvc.yaml stage {name} declares missing param {k}"


def _outputs(stage: dict, gen: str, teacher: str) -> list[str]:
    body = stage.get("do", stage)
    paths = []
    for section in ("outs", "metrics", "plots"):
        for entry in body.get(section, []):
            path = entry if isinstance(entry, str) else next(iter(entry))
            paths.append(path.replace("${key}", gen).replace("${item.teacher}", teacher).replace("${item}", gen))
    return paths


def test_dvc_outputs_follow_paths_module():
    p = ProjectPaths()
    stages = DVC_YAML["stages"]
    assert _outputs(stages["prepare"], "", "") == [str(p.prepared_dir)]
    assert _outputs(stages["train_teacher"], "", "") == [
        str(p.model_dir(0)), str(p.live_dir(0) / "plots" / "metrics")
    ]
    assert _outputs(stages["report"], "", "") == [
        str(p.reports_dir),
        *(str(p.loop_plots_dir / name) for name in ("generations.csv", "confidence.csv", "rounds.csv")),
    ]
    for gen in (1, 2):
        g, t = str(gen), str(gen - 1)
        assert _outputs(stages["infer"], g, t) == [str(p.pseudo_labels(gen)), str(p.val_predictions(gen))]
        assert _outputs(stages["refine"], g, t) == [str(p.refined(gen)), str(p.rules_report(gen))]
        assert _outputs(stages["train_student"], g, t) == [
            str(p.model_dir(gen)), str(p.live_dir(gen) / "plots" / "metrics")
        ]
        assert _outputs(stages["evaluate"], g, t) == [str(p.metrics(gen)), str(p.confusion_plot(gen))]


def test_readme_has_the_two_commands_and_ci_runs_one():
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|bash)?\n(.*?)```", readme, flags=re.S)
    quick_start = blocks[0].split()
    assert quick_start == ["make", "run"] or "make run" in blocks[0]
    assert any("make test" in b for b in blocks)
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^run: setup$", makefile, flags=re.M)
    assert re.search(r"^test: setup\b", makefile, flags=re.M)
