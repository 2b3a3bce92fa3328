"""The `selftrain` console script's preview and inspection commands on a real run."""

from __future__ import annotations

import hashlib
import json

import pytest

from conftest import copy_project
from selftrain_cli.main import main

pytestmark = pytest.mark.integration


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture()
def project(reproduced_project, tmp_path):
    return copy_project(reproduced_project, tmp_path / "p")


def test_refine_dry_run_prints_the_rule_table_and_writes_nothing(project, capsys):
    before = tree_digest(project)
    assert main(["--project-dir", str(project), "refine", "--gen", "2", "--dry-run", "-S", "refine.threshold=0.99"]) == 0
    out = capsys.readouterr().out
    assert "refine, generation 2:" in out and "threshold" in out
    # A 0.99 threshold drops more than the shipped one did in the real round.
    kept_preview = int(out.split(" kept,")[0].rsplit(" ", 1)[1])
    real = json.loads((project / "data/gen2/rules_report.json").read_text())
    assert kept_preview < real["kept"]
    assert tree_digest(project) == before


def test_refine_dry_run_with_rules_file(project, tmp_path, capsys):
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: drop-sevens\n    when: {column: pred, op: '==', value: '7'}\n    drop: true\n"
    )
    assert main(["--project-dir", str(project), "refine", "--gen", "1", "--dry-run", "--rules-file", str(rules)]) == 0
    assert "drop-sevens" in capsys.readouterr().out


def test_bad_rule_in_dry_run_is_one_clear_line(project, capsys):
    code = main(["--project-dir", str(project), "refine", "--gen", "1", "--dry-run",
                 "-S", "refine.rules=[{name: x, when: {column: colour, op: '==', value: 1}, drop: true}]"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "colour" in err and "rules[0]" in err


def test_inspect_round_and_bad_round(project, capsys):
    assert main(["--project-dir", str(project), "inspect", "--gen", "1"]) == 0
    assert "class" in capsys.readouterr().out
    assert main(["--project-dir", str(project), "inspect", "--gen", "7"]) == 1
    assert "no round 7; rounds on disk: 1, 2" in capsys.readouterr().err


def test_inspect_item_history(project, capsys):
    import pandas as pd

    item = pd.read_parquet(project / "data/gen1/refined.parquet")["item_id"].iloc[0]
    assert main(["--project-dir", str(project), "inspect", "--item", item]) == 0
    out = capsys.readouterr().out
    assert item in out


def test_report_stage_output_links_every_round(reproduced_project):
    index = (reproduced_project / "reports" / "index.html").read_text()
    assert "round1.html" in index and "round2.html" in index
    assert (reproduced_project / "plots/loop/generations.csv").read_text().startswith("generation,")
