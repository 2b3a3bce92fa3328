"""The canary truth lives in its own file (selftrain.truth): prepare writes it, no round table carries it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO_ROOT
from selftrain.config import DataConfig
from selftrain.data import load_dataset
from selftrain.errors import DataError
from selftrain.infer import pseudo_label_table
from selftrain.paths import ProjectPaths
from selftrain.sources import prepare_source
from selftrain.label_columns import TRUE_LABELS_COLUMN
from selftrain.truth import TRUTH_COLUMN, read_truth, split_truth, with_truth, write_truth
from stages import refine as refine_stage


def test_split_truth_keeps_only_rows_with_truth():
    manifest = pd.DataFrame(
        {"item_id": ["a", "b", "c"], "split": ["labeled", "unlabeled", "unlabeled"],
         TRUTH_COLUMN: pd.array([None, 4, None], dtype="Int64")}
    )
    rest, truth = split_truth(manifest)
    assert list(rest.columns) == ["item_id", "split"]
    assert truth.to_dict(orient="list") == {"item_id": ["b"], TRUTH_COLUMN: [4]}


def test_with_truth_joins_by_item_id_and_keeps_row_order():
    table = pd.DataFrame({"item_id": ["c", "a", "b"], "pred": [1, 2, 3]})
    truth = pd.DataFrame({"item_id": ["a", "b"], TRUTH_COLUMN: pd.array([7, 8], dtype="Int64")})
    joined = with_truth(table, truth)
    assert joined["item_id"].tolist() == ["c", "a", "b"]
    assert joined[TRUTH_COLUMN].tolist() == [pd.NA, 7, 8] and joined[TRUTH_COLUMN].dtype == "Int64"
    assert with_truth(table, None) is table


def test_unreadable_truth_file_names_the_file(tmp_path):
    assert read_truth(tmp_path / "absent.parquet") is None
    pd.DataFrame({"item_id": ["a"]}).to_parquet(tmp_path / "truth.parquet")
    with pytest.raises(DataError, match=r"truth.parquet: missing required column\(s\) \['true_label'\]"):
        read_truth(tmp_path / "truth.parquet")


def test_truth_reaches_the_rules_report_but_no_table_training_reads(tmp_path):
    """prepare -> a round's pseudo-labels -> the refine stage, on 300 digits.

    What train_student reads (the manifest and refined.parquet) has no truth column,
    nor does the round's pseudo-label table; the rules report still judges the
    rules against the truth, read from the truth file.
    """
    paths = ProjectPaths(tmp_path)
    dataset = prepare_source(paths.prepared_dir, DataConfig(subset=300), seed=0).dataset
    pool = dataset.unlabeled()
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(10, 0.3), size=len(pool))  # (N, 10) a noisy teacher
    pseudo = pseudo_label_table(pool, probs, teacher_gen=0)
    paths.pseudo_labels(1).mkdir(parents=True)
    pseudo.to_parquet(paths.pseudo_label_part(1, 0), index=False)
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    refine_stage.main([
        "--params", str(tmp_path / "params.yaml"), "--gen", "1", "--manifest", str(paths.manifest),
        "--pseudo-labels", str(paths.pseudo_labels(1)), "--truth", str(paths.truth),
        "--out", str(paths.refined(1)), "--report", str(paths.rules_report(1)),
    ])

    for table in (paths.manifest, paths.pseudo_labels(1), paths.refined(1)):
        assert TRUTH_COLUMN not in pd.read_parquet(table).columns, table
    assert TRUTH_COLUMN not in load_dataset(paths.manifest).manifest.columns
    truth = read_truth(paths.truth)
    assert sorted(truth["item_id"]) == sorted(pool["item_id"])
    report = json.loads(paths.rules_report(1).read_text())
    judged = with_truth(pseudo, truth)
    assert report["accuracy"]["rows_with_truth"] == len(pool)
    assert report["accuracy"]["before"] == pytest.approx((judged["pred"] == judged[TRUTH_COLUMN]).mean())
    assert any(rule.get("precision", {}).get("overall", {}).get("judged") for rule in report["rules"])


# --- multilabel: the truth of an unlabeled image is a label set (true_labels) ----------


def test_split_truth_keeps_label_sets_of_the_rows_that_have_one():
    manifest = pd.DataFrame(
        {"item_id": ["a", "b", "c", "d"], "split": ["labeled", "unlabeled", "unlabeled", "unlabeled"],
         "labels": ["1", None, None, None], TRUTH_COLUMN: pd.array([None] * 4, dtype="Int64"),
         TRUE_LABELS_COLUMN: [None, "3|7", None, ""]}
    )
    rest, truth = split_truth(manifest)
    assert list(rest.columns) == ["item_id", "split", "labels"]
    # "" is the empty set: known truth, kept; None is unknown, left out.
    assert truth["item_id"].tolist() == ["b", "d"] and truth[TRUE_LABELS_COLUMN].tolist() == ["3|7", ""]
    assert truth[TRUTH_COLUMN].isna().all() and truth[TRUTH_COLUMN].dtype == "Int64"


def test_read_truth_keeps_true_labels_and_with_truth_joins_them(tmp_path):
    truth = pd.DataFrame(
        {"item_id": ["a", "b"], TRUTH_COLUMN: pd.array([None, None], dtype="Int64"), TRUE_LABELS_COLUMN: ["1|2", ""]}
    )
    write_truth(truth, tmp_path / "truth.parquet")
    read = read_truth(tmp_path / "truth.parquet")
    assert list(read.columns) == ["item_id", TRUTH_COLUMN, TRUE_LABELS_COLUMN]
    table = pd.DataFrame({"item_id": ["c", "b", "a"], "pred_labels": [["1"], [], ["2"]]})
    joined = with_truth(table, read)
    assert joined[TRUE_LABELS_COLUMN].tolist() == [None, "", "1|2"]
    assert joined[TRUTH_COLUMN].isna().all()
    # A table that already has true_label still gets true_labels.
    assert with_truth(table.assign(**{TRUTH_COLUMN: pd.NA}), read)[TRUE_LABELS_COLUMN].tolist() == [None, "", "1|2"]


def test_a_truth_file_with_sets_that_are_not_text_names_the_row(tmp_path):
    pd.DataFrame({"item_id": ["a", "b"], TRUTH_COLUMN: [None, None], TRUE_LABELS_COLUMN: [None, 3]}).to_parquet(
        tmp_path / "truth.parquet"
    )
    with pytest.raises(DataError, match=r"truth.parquet: row 1 has true_labels 3"):
        read_truth(tmp_path / "truth.parquet")
