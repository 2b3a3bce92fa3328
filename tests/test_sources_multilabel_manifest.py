"""The manifest source with task: multilabel: label sets in a `labels` column, and the named errors."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from selftrain.data import MANIFEST_FILE, load_dataset
from selftrain.errors import DataError
from selftrain.sources import prepare_source, read_manifest
from selftrain.truth import TRUTH_FILE, read_truth
from sources_fixtures import image, manifest_config, write_manifest

# Three labeled sets per class at least, so val and test can be split off per stratum.
LABELED_SETS = [
    "bed|dresser", "dresser|bed", "bed", "bed|nightstand", "nightstand", "nightstand|dresser",
    "dresser", "island", "island|bed", "island", "", "",
]  # fmt: skip


def multilabel_tree(raw: Path) -> list[dict]:
    """Images under raw/images and manifest rows: labeled sets, an unlabeled pool, one pool truth."""
    rows = []
    for i, labels in enumerate(LABELED_SETS):
        rel = f"images/l{i}.png"
        image(raw / rel, seed=i)
        rows.append({"path": rel, "labels": labels, "split": "", "room": f"r{i % 3}"})
    for i in range(4):
        rel = f"images/u{i}.png"
        image(raw / rel, seed=100 + i)
        rows.append({"path": rel, "labels": None, "split": "", "room": "r9"})
    rows[-1].update(labels="island|bed", split="unlabeled")  # ground truth of an unlabeled image
    return rows


def prepare(tmp_path: Path, rows: list[dict], suffix: str = ".parquet", **config):
    raw = tmp_path / "raw"
    file = write_manifest(rows, raw / f"m{suffix}")
    return prepare_source(tmp_path / "out", manifest_config(raw, file, **config), seed=0, task="multilabel")


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_label_sets_are_read_split_and_stored_as_text(tmp_path, suffix):
    rows = multilabel_tree(tmp_path / "raw")
    if suffix == ".csv":
        # CSV has no null but the empty cell: an explicit split says an empty cell is the empty set.
        for row in rows[:12]:
            row["split"] = "labeled" if row["labels"] == "" else row["split"]
    dataset = prepare(tmp_path, rows, suffix).dataset
    manifest = pd.read_parquet(tmp_path / "out" / MANIFEST_FILE)

    assert dataset.class_names == ("bed", "dresser", "island", "nightstand")  # sorted distinct names
    assert dataset.is_multilabel and dataset.metadata_columns == ("room",)
    assert list(manifest.columns) == ["item_id", "path", "split", "label", "labels", "room"]
    assert manifest["label"].dtype == "Int64" and manifest["label"].isna().all()
    by_path = manifest.set_index("path")
    # Names in class order, each once: "dresser|bed" is stored as "bed|dresser".
    assert by_path.loc["../raw/images/l1.png", "labels"] == "bed|dresser"
    assert by_path.loc["../raw/images/l10.png", "labels"] == ""
    unlabeled = manifest[manifest["split"] == "unlabeled"]
    assert len(unlabeled) == 4 and unlabeled["labels"].isna().all()
    assert manifest.loc[manifest["split"] != "unlabeled", "labels"].notna().all()
    assert {"labeled", "val", "test"} <= set(manifest["split"])
    truth = read_truth(tmp_path / "out" / TRUTH_FILE)
    assert truth["item_id"].tolist() == ["images/u3.png"]
    assert truth["true_labels"].tolist() == ["bed|island"] and truth["true_label"].isna().all()
    assert "labels" not in dataset.unlabeled().columns and "room" in dataset.unlabeled().columns


def test_data_classes_fix_the_order_and_an_unknown_name_names_its_row(tmp_path):
    rows = multilabel_tree(tmp_path / "raw")
    classes = ("nightstand", "island", "dresser", "bed")
    dataset = prepare(tmp_path, rows, classes=classes).dataset
    assert dataset.class_names == classes
    labeled = dataset.labeled()
    targets = dataset.label_targets(labeled)  # (N, 4)
    for cell, target in zip(labeled["labels"], targets):
        assert {classes[c] for c in target.nonzero()[0]} == set(filter(None, cell.split("|")))
    rows[4]["labels"] = "nightstand|sofa"
    with pytest.raises(DataError, match=r"m.csv: line 6: label 'sofa' is not in the class list"):
        prepare(tmp_path, rows, ".csv", classes=classes)


def test_a_labeled_split_with_a_null_set_is_an_error_in_parquet(tmp_path):
    rows = multilabel_tree(tmp_path / "raw")
    rows[0].update(labels=None, split="val")
    with pytest.raises(DataError, match=r"m.parquet: row 0: split 'val' needs a label set \(''"):
        prepare(tmp_path, rows)


def test_a_class_no_labeled_set_holds_is_named(tmp_path):
    rows = multilabel_tree(tmp_path / "raw")
    for row in rows[:12]:
        row["split"] = "test" if "island" in row["labels"] else "labeled"
    rows[0]["split"], rows[1]["split"] = "val", "labeled"
    with pytest.raises(DataError, match=r"no labeled rows of class 'island'"):
        prepare(tmp_path, rows)


def named_error(tmp_path: Path, change, task: str) -> str:
    raw = tmp_path / "raw"
    frame = change(pd.DataFrame(multilabel_tree(raw)))
    file = write_manifest(frame, raw / "m.csv")
    with pytest.raises(DataError) as error:
        read_manifest(file, manifest_config(raw, file), 0, tmp_path / "out", task=task)
    return str(error.value)


@pytest.mark.parametrize(
    "change, task, message",
    [
        (lambda f: f.rename(columns={"labels": "label"}), "multilabel", r"m.csv: column 'label' and no 'labels' column"),
        (lambda f: f.assign(label="bed"), "multilabel", r"m.csv: column 'label' beside 'labels'"),
        (lambda f: f.drop(columns=["labels"]), "multilabel", r"m.csv: missing required column 'labels'"),
        (lambda f: f, "multiclass", r"m.csv: column 'labels' and no 'label' column; .* set task: multilabel"),
        (lambda f: f.assign(label="bed"), "multiclass", r"m.csv: column 'labels' beside 'label'"),
        (lambda f: f.assign(true_labels="bed"), "multilabel", r"m.csv: column 'true_labels' is reserved"),
    ],
)
def test_a_manifest_written_for_the_other_task_is_one_named_error(tmp_path, change, task, message):
    assert re.search(message, named_error(tmp_path, change, task))


def test_a_prepared_manifest_with_a_set_on_an_unlabeled_row_is_refused(tmp_path):
    prepare(tmp_path, multilabel_tree(tmp_path / "raw"))
    file = tmp_path / "out" / MANIFEST_FILE
    manifest = pd.read_parquet(file)
    row = int((manifest["split"] == "unlabeled").to_numpy().nonzero()[0][0])
    manifest.loc[row, "labels"] = "bed"
    manifest.to_parquet(file, index=False)
    with pytest.raises(DataError, match=rf"manifest.parquet: row {row} \(split 'unlabeled'\) has label set 'bed'"):
        load_dataset(file)


def test_a_prepared_manifest_with_a_name_not_in_classes_json_is_refused(tmp_path):
    prepare(tmp_path, multilabel_tree(tmp_path / "raw"))
    file = tmp_path / "out" / MANIFEST_FILE
    manifest = pd.read_parquet(file)
    row = int((manifest["split"] == "labeled").to_numpy().nonzero()[0][-1])
    manifest.loc[row, "labels"] = "bed|sofa"
    manifest.to_parquet(file, index=False)
    with pytest.raises(DataError, match=rf"manifest.parquet: row {row} has label 'sofa', which is not in classes.json"):
        load_dataset(file)


def test_a_parquet_list_column_is_read_as_label_sets(tmp_path):
    rows = multilabel_tree(tmp_path / "raw")
    for row in rows:
        row["labels"] = None if row["labels"] is None else [n for n in row["labels"].split("|") if n]
    manifest = prepare(tmp_path, rows).dataset.manifest
    assert manifest.set_index("path").loc["../raw/images/l1.png", "labels"] == "bed|dresser"
    assert (manifest.loc[manifest["split"] != "unlabeled", "labels"] == "").sum() == 2
