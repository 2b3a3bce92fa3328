"""The README points only inside the repository, tells one way to track data, and says
what each `persist: true` output costs."""

from __future__ import annotations

import re

import yaml

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_links_stay_inside_the_repository():
    targets = re.findall(r"\]\(([^)\s]+)\)", README)
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+://|#|mailto:", t)]
    assert local, "the README links to BENCHMARKS.md at least"
    for target in local:
        path = (REPO_ROOT / target).resolve()
        assert path.is_relative_to(REPO_ROOT.resolve()), f"README links outside the repository: {target}"
        assert path.exists(), f"README links to a missing file: {target}"


def test_raw_data_is_tracked_per_folder_or_after_untracking_the_readme():
    # data/raw/README.md is in git; `dvc add data/raw` on its own fails ("already tracked by SCM").
    for readme in (README, (REPO_ROOT / "data/raw/README.md").read_text()):
        for match in re.finditer(r"dvc add data/raw(?=[\s`)])", readme):
            before = readme[max(0, match.start() - 40) : match.start()]
            assert "git rm -r --cached data/raw &&" in before, readme[match.start() - 80 : match.end() + 20]


def test_every_persisted_output_says_it_costs_the_run_cache():
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    persisted = [
        name for name, stage in stages.items()
        for out in stage.get("do", stage).get("outs", [])
        if isinstance(out, dict) and any(opts.get("persist") for opts in out.values())
    ]  # fmt: skip
    assert persisted == ["infer"]
    paragraph = next(p for p in README.split("\n\n") if "persist: true" in p)
    assert "`infer@k`" in paragraph and "no run-cache" in paragraph and "runs\ninference again" in paragraph
