"""benchmarks/results/ keeps exactly the records BENCHMARKS.md's tables are built from."""

from __future__ import annotations

import re
import subprocess

from conftest import REPO_ROOT

RESULTS = "benchmarks/results/"


def tracked_results() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", RESULTS], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return {path for path in listed if not path.endswith(".gitignore")}


def referenced(text: str) -> set[str]:
    """Results paths a text names, as `benchmarks/results/x` or `"benchmarks" / "results" / "x"`."""
    names = re.findall(re.escape(RESULTS) + r"([\w./-]+\w)", text)
    names += re.findall(r'"benchmarks" / "results" / "([\w.-]+)"', text)
    return {RESULTS + name for name in names}


def test_every_kept_record_is_named_by_benchmarks_md():
    named = referenced((REPO_ROOT / "BENCHMARKS.md").read_text())
    assert tracked_results() <= named, "not a table's record (a log or a superseded run)"


def test_every_record_the_docs_and_scripts_name_is_kept():
    sources = [REPO_ROOT / "BENCHMARKS.md", REPO_ROOT / "README.md", *sorted((REPO_ROOT / "benchmarks").glob("*.py"))]
    for source in sources:
        for path in referenced(source.read_text()):
            assert path in tracked_results(), f"{source.name} names {path}, which git does not hold"
