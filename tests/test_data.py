"""The embedded digits dataset: files, manifest schema, stratified seeded splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from selftrain.config import DataConfig
from selftrain.data import TRUTH_COLUMN, assign_splits, load_dataset, prepare_digits
from selftrain.errors import DataError


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    return prepare_digits(out, DataConfig(subset=400), seed=0), out


def test_manifest_schema_and_files(prepared):
    dataset, out = prepared
    m = dataset.manifest
    assert list(m.columns) == ["item_id", "path", "split", "label", TRUTH_COLUMN]
    assert len(m) == 400 and m["item_id"].is_unique
    assert dataset.class_names == tuple(str(d) for d in range(10))
    first = Image.open(out / m["path"].iloc[0])
    assert first.size == (8, 8) and first.mode == "L"
    assert not m["path"].str.startswith("/").any()


def test_truth_only_on_unlabeled_rows_and_labels_never_there(prepared):
    m = prepared[0].manifest
    unlabeled = m["split"] == "unlabeled"
    assert m.loc[unlabeled, "label"].isna().all()
    assert m.loc[unlabeled, TRUTH_COLUMN].notna().all()
    assert m.loc[~unlabeled, TRUTH_COLUMN].isna().all()
    assert m.loc[~unlabeled, "label"].notna().all()


def test_labeled_and_unlabeled_views_hide_what_they_must(prepared):
    dataset = prepared[0]
    assert TRUTH_COLUMN not in dataset.labeled().columns
    assert "label" not in dataset.unlabeled().columns


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
