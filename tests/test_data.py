"""The embedded digits dataset: files, manifest schema, stratified seeded splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from selftrain.config import DataConfig
from selftrain.data import assign_splits, load_dataset, prepare_digits
from selftrain.errors import DataError
from selftrain.truth import TRUTH_COLUMN, TRUTH_COLUMNS, TRUTH_FILE, read_truth


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    return prepare_digits(out, DataConfig(subset=400), seed=0), out


def test_manifest_schema_and_files(prepared):
    dataset, out = prepared
    m = dataset.manifest
    assert list(m.columns) == ["item_id", "path", "split", "label"]
    assert list(pd.read_parquet(out / "manifest.parquet").columns) == list(m.columns)
    assert tuple(pd.read_parquet(out / TRUTH_FILE).columns) == TRUTH_COLUMNS
    assert len(m) == 400 and m["item_id"].is_unique
    assert dataset.class_names == tuple(str(d) for d in range(10))
    first = Image.open(out / m["path"].iloc[0])
    assert first.size == (8, 8) and first.mode == "L"
    assert not m["path"].str.startswith("/").any()


def test_truth_only_for_unlabeled_rows_in_its_own_file_and_labels_never_there(prepared):
    dataset, out = prepared
    m = dataset.manifest
    unlabeled = m["split"] == "unlabeled"
    assert m.loc[unlabeled, "label"].isna().all()
    assert m.loc[~unlabeled, "label"].notna().all()
    truth = read_truth(out / TRUTH_FILE)
    assert sorted(truth["item_id"]) == sorted(m.loc[unlabeled, "item_id"])
    assert truth[TRUTH_COLUMN].notna().all()
    # The digits' own labels: item digits-00042 is scikit-learn's image 42.
    from sklearn.datasets import load_digits

    target = load_digits().target
    for item_id, label in zip(truth["item_id"], truth[TRUTH_COLUMN]):
        assert label == target[int(item_id.split("-")[1])]


def test_labeled_and_unlabeled_views_hide_what_they_must(prepared):
    dataset = prepared[0]
    assert TRUTH_COLUMN not in dataset.manifest.columns
    assert TRUTH_COLUMN not in dataset.labeled().columns
    assert TRUTH_COLUMN not in dataset.unlabeled().columns
    assert "label" not in dataset.unlabeled().columns


def test_a_manifest_that_still_carries_truth_loads_without_it(prepared, tmp_path):
    _, out = prepared
    old = pd.read_parquet(out / "manifest.parquet").assign(**{TRUTH_COLUMN: pd.array([1] * 400, dtype="Int64")})
    old.to_parquet(tmp_path / "manifest.parquet", index=False)
    (tmp_path / "classes.json").write_text((out / "classes.json").read_text())
    dataset = load_dataset(tmp_path / "manifest.parquet")
    assert TRUTH_COLUMN not in dataset.manifest.columns and dataset.metadata_columns == ()


def test_splits_are_stratified_and_sized():
    labels = np.repeat(np.arange(10), 100)
    splits = assign_splits(labels, DataConfig(), seed=0)
    counts = pd.Series(splits).value_counts()
    assert counts["test"] == 200
    assert counts["val"] == 80 and counts["labeled"] == 40
    labeled_classes = pd.Series(labels[splits == "labeled"]).value_counts()
    assert (labeled_classes == 4).all()


def test_splits_are_seeded():
    labels = np.repeat(np.arange(10), 50)
    a = assign_splits(labels, DataConfig(), seed=3)
    assert (a == assign_splits(labels, DataConfig(), seed=3)).all()
    assert (a != assign_splits(labels, DataConfig(), seed=4)).any()


def test_too_few_labels_is_a_clear_error():
    labels = np.repeat(np.arange(10), 10)
    with pytest.raises(DataError, match="need at least one per class"):
        assign_splits(labels, DataConfig(labeled_fraction=0.01), seed=0)


def test_load_dataset_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="manifest not found"):
        load_dataset(tmp_path / "manifest.parquet")
    pd.DataFrame({"item_id": ["a"], "path": ["a.png"]}).to_parquet(tmp_path / "m.parquet")
    with pytest.raises(DataError, match=r"m.parquet: missing required column\(s\) \['split', 'label'\]"):
        load_dataset(tmp_path / "m.parquet")


def test_a_multiclass_dataset_has_no_label_sets(prepared):
    dataset, _ = prepared
    assert not dataset.is_multilabel
    with pytest.raises(DataError, match=r"manifest.parquet: no 'labels' column; label sets exist in the multilabel"):
        dataset.label_targets(dataset.labeled())
