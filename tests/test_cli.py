"""The `selftrain` console script's preview and inspection commands on a real run."""

from __future__ import annotations

import hashlib
import json
import re

import pandas as pd
import pytest

from conftest import copy_project
from flows.cli import main

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
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("drop-sevens")]
    matched, changed, dropped = (int(n) for n in re.findall(r"\b\d+\b", line)[:3])
    sevens = int((pd.read_parquet(project / "data/gen1/pseudo_labels")["pred"] == 7).sum())
    assert matched == changed == dropped == sevens


def test_bad_rule_in_dry_run_is_one_clear_line(project, capsys):
    code = main(["--project-dir", str(project), "refine", "--gen", "1", "--dry-run",
                 "-S", "refine.rules=[{name: x, when: {column: colour, op: '==', value: 1}, drop: true}]"])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "colour" in err and "rules[0]" in err


def test_inspect_round_and_bad_round(project, capsys):
    assert main(["--project-dir", str(project), "inspect", "--gen", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    refined = pd.read_parquet(project / "data/gen1/refined.parquet")

    def value(item):
        """The number on the overview table's line for `item`."""
        line = next(line for line in lines if re.match(rf"\W*{item}\W", line))
        return int(re.findall(r"\b\d+\b", line)[0])

    assert value("rows") == len(refined)
    assert value("kept") == int(refined["kept"].sum())
    assert main(["--project-dir", str(project), "inspect", "--gen", "7"]) == 1
    assert "no round 7; rounds on disk: 1, 2" in capsys.readouterr().err


def test_inspect_item_history(project, capsys):
    row = pd.read_parquet(project / "data/gen1/refined.parquet").iloc[0]
    assert main(["--project-dir", str(project), "inspect", "--item", row["item_id"]]) == 0
    out = capsys.readouterr().out
    # Round 1's line: the teacher's prediction and confidence for this item.
    (line,) = [line for line in out.splitlines() if re.match(r"\W*1\W+0\W", line)]
    assert f"{row['confidence']:.4f}" in line
    assert re.findall(r"\b\d+\b", line)[2] == str(row["pred"])


def test_report_stage_output_links_every_round(reproduced_project):
    index = (reproduced_project / "reports" / "index.html").read_text()
    assert "round1.html" in index and "round2.html" in index
    generations = pd.read_csv(reproduced_project / "plots/loop/generations.csv")
    assert generations["generation"].tolist() == [0, 1, 2]
    assert generations["test_accuracy"].tolist() == [
        json.loads((reproduced_project / f"metrics/gen{g}.json").read_text())["accuracy"] for g in range(3)
    ]
