"""People's corrections: read and checked, applied before every rule, exempt from the rest, counted."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import dvc, make_project, ran_stages, tiny_params
from refine_fixtures import BED, DRESSER, ISLAND, LAMP, NAMES, config, drop_when, make_table
from selftrain.errors import DataError
from selftrain.refine import RefineContext, refine
from selftrain.refine.corrections import Corrections, read_corrections


def corrections_file(tmp_path, text):
    path = tmp_path / "corrections.csv"
    path.write_text(text)
    return path


def test_read_corrections_labels_and_drops(tmp_path):
    path = corrections_file(tmp_path, "item_id,label,note\nitem000,lamp,seen\nitem001,,\nitem002,drop,blurry\n")
    assert read_corrections(path, NAMES).labels == {"item000": LAMP, "item001": None, "item002": None}


def test_missing_corrections_file_is_no_corrections(tmp_path):
    assert read_corrections(tmp_path / "absent.csv", NAMES).labels == {}


def test_header_only_file_is_no_corrections(tmp_path):
    assert read_corrections(corrections_file(tmp_path, "item_id,label,note\n"), NAMES).labels == {}


def test_bad_corrections_name_every_row(tmp_path):
    path = corrections_file(tmp_path, "item_id,label,note\nitem000,sofa,\nitem001,bed,\nitem001,lamp,\n,bed,\n")
    with pytest.raises(DataError) as err:
        read_corrections(path, NAMES)
    lines = str(err.value).splitlines()
    assert lines == [
        f"{path}: line 2: label 'sofa' is not a class; expected one of {list(NAMES)} or 'drop'",
        f"{path}: line 4: item_id 'item001' repeats line 3",
        f"{path}: line 5: empty item_id",
    ]


def _run(table, rules=(), corrections=None, **section):
    return refine(table, config(rules, **section), RefineContext(NAMES, 1), corrections)


def test_corrections_run_first_and_are_counted_as_a_rule():
    table = make_table([BED, ISLAND, DRESSER], [0.9, 0.9, 0.9])
    result = _run(table, corrections=Corrections({"item000": LAMP, "item001": None, "unknown": BED}, "c.csv"))
    report = result.report
    assert report["order"][0] == "corrections"
    entry = report["rules"][0]
    assert (entry["name"], entry["kind"], entry["matched"], entry["dropped"]) == ("corrections", "corrections", 2, 1)
    assert entry["relabelled"] == {"bed->lamp": 1}
    assert "1 name no pool item" in entry["note"]
    assert result.table["label"].tolist()[0] == LAMP
    assert result.table["kept"].tolist() == [True, False, True]
    assert result.table["dropped_by"].tolist()[1] == "corrections"


def test_no_corrections_means_no_entry_and_the_same_table():
    table = make_table([BED, ISLAND], [0.9, 0.4])
    plain = refine(table, config(threshold=0.5), RefineContext(NAMES, 1))
    empty = _run(table, corrections=Corrections(), threshold=0.5)
    assert "corrections" not in plain.report["order"]
    assert empty.report["rules"][0]["enabled"] is False
    assert empty.table.drop(columns=["rules"]).equals(plain.table.drop(columns=["rules"]))


def test_corrected_rows_are_exempt_from_every_later_rule():
    # item000: low confidence (threshold would drop it), a user drop rule on bed, a relabel rule,
    # and balance capping beds at 1; item001: the same but uncorrected, so the rules hit it.
    table = make_table([BED, BED, BED], [0.3, 0.3, 0.95])
    rules = [
        {"name": "bed-to-lamp", "when": {"column": "pred", "op": "==", "value": "bed"}, "relabel": "lamp"},
        drop_when({"column": "confidence", "op": "<", "value": 0.5}, name="unsure"),
    ]
    result = _run(
        table, rules, corrections=Corrections({"item000": BED}, "c.csv"),
        threshold=0.5, balance={"enabled": True, "per_class": 1},
    )  # fmt: skip
    row = result.table.iloc[0]
    assert row["kept"] and row["label"] == BED and row["weight"] == 1.0 and row["copies"] == 1
    assert list(row["rules"]) == ["corrections"]
    assert row["dropped_by"] is None
    # A person's label is a hard target even where it agrees with the teacher.
    assert row["target"] == [1.0, 0.0, 0.0, 0.0]
    assert result.table.iloc[1]["dropped_by"] == "unsure"
    assert result.table.iloc[2]["label"] == LAMP
    # Balance counted the corrected bed neither as a bed to cap nor duplicated it.
    balance = next(e for e in result.report["rules"] if e["name"] == "balance")
    assert balance["dropped"] == 0
    assert result.report["classes"]["after"] == {"bed": 1, "island": 0, "dresser": 0, "lamp": 1}


def test_a_corrected_drop_stays_dropped_even_under_keep():
    table = make_table([BED, ISLAND], [0.9, 0.9])
    keep = {"name": "trust", "when": {"column": "confidence", "op": ">", "value": 0.5}, "keep": True}
    result = _run(table, [keep], corrections=Corrections({"item000": None}, "c.csv"))
    assert result.table["kept"].tolist() == [False, True]
    assert "trust" not in list(result.table["rules"][0])


def test_corrections_precision_is_judged_against_the_canary():
    table = make_table([BED, ISLAND], [0.9, 0.9])
    table["true_label"] = [LAMP, DRESSER]
    result = _run(table, corrections=Corrections({"item000": LAMP, "item001": BED}, "c.csv"))
    precision = result.report["rules"][0]["precision"]["relabel"]
    assert (precision["right"], precision["judged"]) == (1, 2)
    assert np.isclose(result.report["accuracy"]["after"], 0.5)


# --- under real DVC: an edit of the corrections reruns refine and what follows, never infer


@pytest.mark.integration
def test_editing_corrections_reruns_refine_not_infer(tmp_path):
    params = tiny_params()
    params["generations"] = {"1": params["generations"]["1"]}
    params["evaluate_generations"] = [0, 1]
    params["data"]["subset"] = 150
    params["teacher"]["epochs"] = 1
    project = make_project(tmp_path / "project", params)
    dvc(project, "repro")
    assert json.loads(dvc(project, "status", "--json").stdout) == {}

    pool = pd.read_parquet(project / "data/gen1/pseudo_labels")
    item = pool.iloc[0]
    names = json.loads((project / "data/prepared/classes.json").read_text())
    other = names[(int(item["pred"]) + 1) % len(names)]
    queue = project / "reviews/gen1/queue.csv"
    queue.parent.mkdir(parents=True)
    queue.write_text(f"item_id,correct_label,note\n{item['item_id']},{other},checked\n")
    subprocess.run(
        [sys.executable, "-m", "selftrain_cli", "review", "--apply", str(queue)], cwd=project, check=True
    )

    changed = set(json.loads(dvc(project, "status", "--json").stdout))
    assert changed == {"refine@1"}  # only the stage that reads the file is out of date itself
    ran = ran_stages(dvc(project, "repro").stdout)
    # Downstream of the student, DVC reruns what its changed outputs reach (evaluate@1, report, ...).
    assert {"refine@1", "train_student@1", "report"} <= set(ran)
    assert not {"prepare", "train_teacher", "evaluate@0", "infer@1"} & set(ran)
    refined = pd.read_parquet(project / "data/gen1/refined.parquet").set_index("item_id")
    row = refined.loc[item["item_id"]]
    assert row["label"] == names.index(other) and list(row["rules"]) == ["corrections"]
    report = json.loads((project / "data/gen1/rules_report.json").read_text())
    assert report["rules"][0]["name"] == "corrections" and report["rules"][0]["matched"] == 1
    assert json.loads(dvc(project, "status", "--json").stdout) == {}
