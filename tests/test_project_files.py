"""dvc.yaml, params.yaml, paths.py, the flow and the README agree with each other."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from conftest import REPO_ROOT, dvc, pipeline_for, tiny_multilabel_params, tiny_params, write_params
from flows.loop import REPORT_STAGE, SELECT_BEST_STAGE, stage_order
from selftrain.generation_deps import GENERATION_DEPS, PER_GENERATION, generation_deps
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
        assert _outputs(stages["evaluate"], g, t) == [
            str(p.metrics(gen)), str(p.confusion_plot(gen)), str(p.per_class_plot(gen))
        ]


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


# ---------------------------------------------------------------------------
# What each stage really reads (recorded during a real run) is what dvc.yaml declares

# Each stage's main with the arguments of its dvc.yaml `cmd`, read from dvc.yaml itself
# (generation 1 for the rounds, evaluate for generations 0 and 1), in dvc repro's order.
def _stage_run(name: str, gen: str = "1") -> tuple[str, str, list[str]]:
    body = DVC_YAML["stages"][name].get("do", DVC_YAML["stages"][name])
    cmd = body["cmd"].replace("${key}", gen).replace("${item.teacher}", str(int(gen) - 1)).replace("${item}", gen)
    python, flag, module, *argv = shlex.split(cmd)
    assert (python, flag) == ("python", "-m") and "${" not in cmd, f"dvc.yaml stage {name}: cmd {cmd!r}"
    return name, module, argv


STAGE_RUNS = (
    _stage_run("prepare"),
    _stage_run("train_teacher"),
    _stage_run("evaluate", "0"),
    _stage_run("infer"),
    _stage_run("refine"),
    _stage_run("train_student"),
    _stage_run("evaluate"),
    _stage_run("select_best"),
    _stage_run("report"),
)


@pytest.fixture(scope="module", params=["multiclass", "multilabel"])
def recorded_reads(request, tmp_path_factory):
    """Stage name -> (params keys, code files) read while running the whole loop for one
    generation on tiny params, in this process, once per task (a multi-label round runs
    other code: label sets, mosaics, BCE)."""
    import importlib

    from stage_reads import recording

    project = tmp_path_factory.mktemp(f"reads-{request.param}")
    params = tiny_params() if request.param == "multiclass" else tiny_multilabel_params()
    params["generations"] = {"1": params["generations"]["1"]}
    params["evaluate_generations"] = [0, 1]
    # What is read does not depend on how much.
    if request.param == "multiclass":
        params["data"]["subset"] = 150
    else:
        params["data"]["mosaic"]["count"] = 200
    params["teacher"]["epochs"] = 1
    write_params(project, params)
    reads: dict[str, tuple[set[str], set[str]]] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        for name, module, argv in STAGE_RUNS:
            main = importlib.import_module(module).main
            with recording() as seen:
                main(argv)
            keys, files = reads.setdefault(name, (set(), set()))
            keys |= seen.params
            files |= seen.files
    return reads


def _declared(name: str) -> tuple[list[str], list[str]]:
    """(params keys, deps) dvc.yaml declares for a stage, with `${key}` as generation 1."""
    body = DVC_YAML["stages"][name].get("do", DVC_YAML["stages"][name])

    def expand(text: str) -> str:
        return text.replace("${key}", "1").replace("${item.teacher}", "0").replace("${item}", "1")

    deps = [expand(d) for d in body.get("deps", [])]
    return [expand(p) for p in body.get("params", [])], [d.replace("${data.raw_dir}", "data/raw") for d in deps]


def _covered(key: str, declared: list[str]) -> bool:
    return any(key == d or key.startswith(d + ".") or d.startswith(key + ".") for d in declared)


@pytest.mark.parametrize("stage", sorted({name for name, _, _ in STAGE_RUNS}))
def test_every_params_key_a_stage_reads_is_declared(recorded_reads, stage):
    declared, _ = _declared(stage)
    keys, _ = recorded_reads[stage]
    assert keys, f"{stage}: recorded no params reads (is the recorder working?)"
    missing = sorted(k for k in keys if not _covered(k, declared))
    assert not missing, f"dvc.yaml stage {stage} reads params it does not declare: {missing}"


@pytest.mark.parametrize("stage", sorted({name for name, _, _ in STAGE_RUNS}))
def test_every_code_file_a_stage_runs_is_a_dep(recorded_reads, stage):
    _, deps = _declared(stage)
    _, files = recorded_reads[stage]
    assert f"stages/{stage}.py" in files
    missing = sorted(f for f in files if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps))
    assert not missing, f"dvc.yaml stage {stage} runs code it does not declare as deps: {missing}"


def test_select_best_and_report_depend_on_exactly_the_generations_in_params():
    """Not on whole folders: a leftover file of an older run is no dep, and the deps
    are the files of params.yaml's generations, no more (dvc.yaml spells them out)."""
    generations = PARAMS["evaluate_generations"]
    for stage in GENERATION_DEPS:
        deps = DVC_YAML["stages"][stage]["deps"]
        assert not {"data", "metrics"} & set(deps), f"{stage} depends on a whole folder"
        listed = [d for d in deps if PER_GENERATION.match(d)]
        assert listed == generation_deps(stage, generations), f"{stage}: per-generation deps != params.yaml"
    assert pipeline_for(PARAMS) == DVC_YAML
