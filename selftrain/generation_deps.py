"""The per-generation deps dvc.yaml spells out for select_best and report, and the check
that they are the generations params.yaml defines.

DVC 3 cannot loop over a list inside `deps`, so dvc.yaml lists each generation's files
for these two stages by hand. When they and params.yaml's `evaluate_generations` differ,
DVC fails only at select_best, after every generation has trained ("No such file or
directory: metrics/gen3.json"); the flow checks before its first stage instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from selftrain.errors import ConfigError

# Files of each generation g (round r = g >= 1) that select_best and report depend on.
GENERATION_DEPS = {
    "select_best": ("metrics/gen{g}.json",),
    "report": (
        "data/gen{r}/pseudo_labels",
        "data/gen{r}/refined.parquet",
        "data/gen{r}/rules_report.json",
        "metrics/gen{g}.json",
    ),
}
PER_GENERATION = re.compile(r"^(data|metrics)/gen\d+")


def generation_deps(stage: str, generations: list[int]) -> list[str]:
    """The per-generation deps of `stage` for `generations` (0 = teacher), rounds first."""
    templates = GENERATION_DEPS[stage]
    rounds = [t.format(r=r) for r in generations if r >= 1 for t in templates if "{r}" in t]
    gens = [t.format(g=g) for g in generations for t in templates if "{g}" in t]
    return rounds + gens


def check_generation_deps(dvc_yaml: str | Path, generations: list[int]) -> None:
    """Raise ConfigError naming dvc.yaml, the stage and the files when select_best's or
    report's per-generation deps are not exactly those of `generations`."""
    path = Path(dvc_yaml)
    try:
        stages = (yaml.safe_load(path.read_text()) or {}).get("stages", {})
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read it ({err})") from err
    for stage in GENERATION_DEPS:
        if stage not in stages:
            continue
        listed = [d for d in stages[stage].get("deps", []) if isinstance(d, str) and PER_GENERATION.match(d)]
        expected = generation_deps(stage, generations)
        if sorted(listed) == sorted(expected):
            continue
        missing = [d for d in expected if d not in listed]
        extra = [d for d in listed if d not in expected]
        parts = [f"lacks {', '.join(missing)}" if missing else "", f"also lists {', '.join(extra)}" if extra else ""]
        raise ConfigError(
            f"{path}: stage {stage}'s deps {' and '.join(p for p in parts if p)}, but params.yaml's "
            f"evaluate_generations is {generations}; edit the per-generation deps of select_best and "
            "report in dvc.yaml to the generations in params.yaml (README: 'a different number of "
            "generations edits those lists too')"
        )


__all__ = ["GENERATION_DEPS", "PER_GENERATION", "check_generation_deps", "generation_deps"]


def with_generation_deps(pipeline: dict, generations: list[int]) -> dict:
    """A parsed dvc.yaml with select_best's and report's per-generation deps listed for
    `generations` (what a user edits with the generation count), in place of the ones it had."""
    for stage in GENERATION_DEPS:
        deps = pipeline["stages"][stage]["deps"]
        first = next((i for i, d in enumerate(deps) if PER_GENERATION.match(d)), None)
        if first is None:  # a dvc.yaml that lists no per-generation files: nothing to match
            continue
        others = [d for d in deps if not PER_GENERATION.match(d)]
        pipeline["stages"][stage]["deps"] = others[:first] + generation_deps(stage, generations) + others[first:]
    return pipeline
