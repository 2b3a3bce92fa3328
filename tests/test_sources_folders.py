"""The folders source: class folders, the unlabeled pool, and its errors naming the folder."""

from __future__ import annotations

import os

import pytest

from selftrain.errors import DataError
from selftrain.sources import read_folders
from sources_fixtures import folder_tree, folders_config, image


def test_data_classes_set_the_index_order(tmp_path):
    raw = folder_tree(tmp_path / "raw")
    result = read_folders(raw, folders_config(raw, classes=("dog", "cat")), 0, tmp_path / "out")
    assert result.class_names == ("dog", "cat")
    m = result.manifest
    assert (m.loc[m["item_id"].str.startswith("labeled/dog/"), "label"] == 0).all()


# --- folders: bad data -----------------------------------------------------------


def test_missing_folders_are_named(tmp_path):
    with pytest.raises(DataError, match=r"raw: data.raw_dir not found"):
        read_folders(tmp_path / "raw", folders_config(tmp_path / "raw"), 0, tmp_path / "out")
    raw = folder_tree(tmp_path / "raw")
    os.rename(raw / "unlabeled", tmp_path / "elsewhere")
    with pytest.raises(DataError, match=r"raw/unlabeled: missing folder"):
        read_folders(raw, folders_config(raw), 0, tmp_path / "out")


def test_empty_class_folder_is_named(tmp_path):
    raw = folder_tree(tmp_path / "raw")
    (raw / "labeled" / "bird").mkdir()
    (raw / "labeled" / "bird" / "README").write_text("todo")
    with pytest.raises(DataError, match=r"labeled/bird: class folder has no PNG or JPEG images"):
        read_folders(raw, folders_config(raw), 0, tmp_path / "out")


def test_class_folder_not_in_data_classes_is_named(tmp_path):
    raw = folder_tree(tmp_path / "raw", classes=("cat", "dog", "eel"))
    with pytest.raises(DataError, match=r"labeled/eel: class folder 'eel' is not in data.classes"):
        read_folders(raw, folders_config(raw, classes=("cat", "dog")), 0, tmp_path / "out")


def test_val_class_without_labeled_folder_is_named(tmp_path):
    raw = folder_tree(tmp_path / "raw")
    image(raw / "val" / "eel" / "v.png")
    with pytest.raises(DataError, match=r"val/eel: class folder 'eel' has no labeled/eel/ folder"):
        read_folders(raw, folders_config(raw), 0, tmp_path / "out")


def test_class_in_data_classes_without_images_is_an_error(tmp_path):
    raw = folder_tree(tmp_path / "raw")
    with pytest.raises(DataError, match=r"no labeled images of class 'eel'"):
        read_folders(raw, folders_config(raw, classes=("cat", "dog", "eel")), 0, tmp_path / "out")
