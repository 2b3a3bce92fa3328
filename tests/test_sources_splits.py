"""Split allocation: val and test split off labeled rows, seeded and stratified."""

from __future__ import annotations

import pytest

from selftrain.errors import DataError
from selftrain.sources import read_folders
from sources_fixtures import folder_tree, folders_config, image


def test_folder_splits_are_seeded(tmp_path):
    raw = folder_tree(tmp_path / "raw", per_class=10)
    a = read_folders(raw, folders_config(raw), 0, tmp_path / "out").manifest
    b = read_folders(raw, folders_config(raw), 0, tmp_path / "out").manifest
    c = read_folders(raw, folders_config(raw), 5, tmp_path / "out").manifest
    assert a.equals(b)
    assert (a["split"] != c["split"]).any()
    # 20 labeled: test takes round(0.2 * 20) = 4, val round(0.1 * 16) = 2, stratified.
    assert a["split"].value_counts().to_dict() == {"labeled": 14, "unlabeled": 4, "test": 4, "val": 2}


def test_optional_val_and_test_folders_are_used_as_given(tmp_path):
    raw = folder_tree(tmp_path / "raw")
    image(raw / "val" / "cat" / "v0.png")
    image(raw / "val" / "dog" / "v1.jpg", fmt="JPEG", mode="RGB")
    image(raw / "test" / "dog" / "t0.png", seed=3)
    m = read_folders(raw, folders_config(raw), 0, tmp_path / "out").manifest
    by_split = m.groupby("split")["item_id"].apply(sorted).to_dict()
    assert by_split["val"] == ["val/cat/v0.png", "val/dog/v1.jpg"]
    assert by_split["test"] == ["test/dog/t0.png"]
    # With both folders present nothing is split off labeled/.
    assert len(by_split["labeled"]) == 12


def test_only_the_missing_split_is_split_off(tmp_path):
    raw = folder_tree(tmp_path / "raw")
    image(raw / "test" / "dog" / "t0.png", seed=3)
    m = read_folders(raw, folders_config(raw), 0, tmp_path / "out").manifest
    assert (m["split"] == "test").sum() == 1
    assert (m["split"] == "val").sum() == 1  # round(0.1 * 12)


def test_tiny_classes_still_give_val_and_test_but_keep_a_labeled_image(tmp_path):
    raw = folder_tree(tmp_path / "raw", per_class=2)
    m = read_folders(raw, folders_config(raw), 0, tmp_path / "out").manifest
    # 4 labeled: at least one test and one val, and every class keeps a labeled image.
    assert m["split"].value_counts().to_dict() == {"unlabeled": 4, "labeled": 2, "test": 1, "val": 1}
    assert set(m.loc[m["split"] == "labeled", "label"]) == {0, 1}


def test_too_few_labeled_images_for_test_is_a_clear_error(tmp_path):
    raw = folder_tree(tmp_path / "raw", per_class=1)
    # One image per class: it must stay labeled, so there is nothing to test on.
    with pytest.raises(DataError, match=r"raw: no test images; add .*raw/test/<class>/ folders"):
        read_folders(raw, folders_config(raw), 0, tmp_path / "out")
