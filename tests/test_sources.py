"""prepare_source: the prepared directory for folders and manifests, data config, DVC reruns."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import dvc, git, make_project, ran_stages, tiny_params
from selftrain.config import params_from_dict
from selftrain.data import TRUTH_COLUMN
from selftrain.truth import TRUTH_FILE, read_truth
from selftrain.errors import ConfigError
from selftrain.sources import prepare_source
from sources_fixtures import (
    SHIPPED,
    folder_tree,
    folders_config,
    image,
    manifest_config,
    manifest_tree,
    truncate,
    with_data,
    write_manifest,
)


def test_folders_happy_path(tmp_path):
    raw = folder_tree(tmp_path / "data" / "raw")
    (raw / "unlabeled" / "notes.txt").write_text("not an image")
    out = tmp_path / "data" / "prepared"
    prepared = prepare_source(out, folders_config(raw), seed=0)
    dataset, m = prepared.dataset, prepared.dataset.manifest

    assert dataset.class_names == ("cat", "dog")
    assert json.loads((out / "classes.json").read_text()) == ["cat", "dog"]
    assert len(m) == 2 * 6 + 4 and m["item_id"].is_unique and prepared.skipped == 0
    assert set(m["split"]) == {"labeled", "unlabeled", "val", "test"}
    # Paths are relative to the manifest's directory and point back into data/raw in place.
    assert m["path"].str.startswith("../raw/").all()
    assert "../raw/unlabeled/day1/cam/u1.PNG" in set(m["path"])
    for rel, abs_path in zip(m["path"], dataset.resolve(m["path"])):
        assert Path(abs_path).is_file(), rel
    cat = m[m["item_id"].str.startswith("labeled/cat/")]
    assert (cat["label"] == 0).all() and len(cat) == 6
    unlabeled = m[m["split"] == "unlabeled"]
    assert unlabeled["label"].isna().all() and TRUTH_COLUMN not in m.columns
    assert read_truth(out / TRUTH_FILE).empty  # folders have no ground truth
    # Every class keeps labeled images after val/test are split off.
    assert set(m.loc[m["split"] == "labeled", "label"]) == {0, 1}
    skipped = json.loads((out / "skipped.json").read_text())
    assert skipped["count"] == 0 and skipped["ignored"] == ["../raw/unlabeled/notes.txt"]
    assert not (out / "images").exists()


def test_edited_image_changes_the_content_digest(tmp_path):
    raw = folder_tree(tmp_path / "raw")
    out = tmp_path / "out"
    prepare_source(out, folders_config(raw), 0)
    before = json.loads((out / "source.json").read_text())
    image(raw / "labeled" / "cat" / "00.png", seed=999)  # same path, new pixels
    prepare_source(out, folders_config(raw), 0)
    after = json.loads((out / "source.json").read_text())
    assert before["content_md5"] != after["content_md5"]
    assert before["items"] == after["items"]


def test_bad_unlabeled_images_are_skipped_and_listed(tmp_path):
    raw = folder_tree(tmp_path / "raw", unlabeled=6)
    truncate(raw / "unlabeled" / "day0" / "cam" / "u2.jpeg")
    (raw / "unlabeled" / "empty.png").write_bytes(b"")
    out = tmp_path / "data" / "prepared"
    prepared = prepare_source(out, folders_config(raw), 0)
    assert prepared.skipped == 2
    assert (prepared.dataset.manifest["split"] == "unlabeled").sum() == 6 + 1 - 2
    skipped = json.loads((out / "skipped.json").read_text())
    assert skipped["count"] == 2
    listed = {s["path"]: s["reason"] for s in skipped["skipped"]}
    assert set(listed) == {"../../raw/unlabeled/day0/cam/u2.jpeg", "../../raw/unlabeled/empty.png"}
    assert "truncated" in listed["../../raw/unlabeled/day0/cam/u2.jpeg"]
    assert not prepared.dataset.manifest["path"].isin(list(listed)).any()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_manifest_source_carries_metadata(tmp_path, suffix):
    raw = tmp_path / "data" / "raw"
    rows = manifest_tree(raw)
    if suffix == ".parquet":
        for row in rows:  # Parquet keeps missing values as nulls, not empty strings
            row["label"] = row["label"] or None
    file = write_manifest(rows, raw / f"manifest{suffix}")
    out = tmp_path / "data" / "prepared"
    prepared = prepare_source(out, manifest_config(raw, file), seed=0)
    m, dataset = prepared.dataset.manifest, prepared.dataset

    assert dataset.class_names == ("7", "None")
    assert dataset.metadata_columns == ("group_id", "score")
    assert list(m["group_id"][:2]) == ["g0", "g1"] and m["score"].dtype.kind == "i"
    assert m.loc[m["item_id"] == "images/None_0.png", "split"].item() == "test"
    assert (m.loc[m["item_id"].str.startswith("images/None_"), "label"] == 1).all()
    assert m["path"].str.startswith("../raw/").all()
    unlabeled = m[m["split"] == "unlabeled"]
    assert len(unlabeled) == 3 and unlabeled["label"].isna().all()
    assert TRUTH_COLUMN not in m.columns
    truth = read_truth(out / TRUTH_FILE)
    assert truth.to_dict(orient="list") == {"item_id": [unlabeled["item_id"].iloc[2]], TRUTH_COLUMN: [0]}
    assert m["split"].value_counts().to_dict() == {"labeled": 6, "unlabeled": 3, "test": 2, "val": 2}
    # The metadata column reaches what the teacher pseudo-labels (and so the round tables).
    assert "group_id" in dataset.unlabeled().columns
    assert json.loads((out / "classes.json").read_text()) == ["7", "None"]


# --- config ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        ({"source": "s3"}, r"data.source: must be one of \['digits', 'digits-mosaic', 'folders', 'manifest'\]"),
        ({"source": "manifest"}, r"data.manifest: required when data.source is 'manifest'"),
        ({"source": "manifest", "manifest": "data/raw/m.xlsx"}, r"data.manifest: expected a .csv or .parquet file"),
        ({"source": "folders", "classes": "cat"}, r"data.classes: expected a list, got 'cat'"),
        ({"source": "folders", "classes": ["cat", 3]}, r"data.classes\[1\]: expected a string, got 3"),
        ({"source": "folders", "classes": ["cat", "cat"]}, r"data.classes\[1\]: duplicate class name 'cat'"),
        ({"source": "folders", "classes": ["cat"]}, r"data.classes: need at least two class names"),
        ({"classes": ["cat", "dog"]}, r"data.classes: the digits source names its own classes"),
        ({"allow_outside_root": "yes"}, r"data.allow_outside_root: expected true or false"),
        ({"raw_dir": None}, r"data.raw_dir: expected a string"),
        ({"source": "folders", "subset": 10}, r"data.subset: only the digits source takes a subset"),
    ],
)
def test_data_config_errors_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        params_from_dict(with_data(**data))


def test_data_config_new_keys_parse():
    data = params_from_dict(
        with_data(source="manifest", manifest="data/raw/m.csv", classes=["b", "a"], allow_outside_root=True)
    ).data
    assert data.classes == ("b", "a") and data.manifest == "data/raw/m.csv" and data.allow_outside_root
    shipped = params_from_dict(copy.deepcopy(SHIPPED)).data
    assert (shipped.source, shipped.raw_dir, shipped.manifest, shipped.classes) == ("digits", "data/raw", None, None)


# --- a real DVC project --------------------------------------------------------------


@pytest.mark.integration
def test_dvc_reruns_prepare_when_a_raw_image_is_added(tmp_path):
    params = tiny_params()
    params["data"].update(source="folders", subset=0)
    project = make_project(tmp_path / "project", params)
    folder_tree(project / "data" / "raw", per_class=5, unlabeled=3)
    # Per-folder `dvc add`: data/raw/README.md stays in git, the images go to DVC.
    dvc(project, "add", "data/raw/labeled", "data/raw/unlabeled")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "raw data")

    first = dvc(project, "repro", "prepare")
    assert ran_stages(first.stdout) == ["prepare"]
    m = pd.read_parquet(project / "data" / "prepared" / "manifest.parquet")
    assert len(m) == 13 and (m["split"] == "unlabeled").sum() == 3
    assert m["path"].str.startswith("../raw/").all()
    assert "prepare" not in dvc(project, "status", "prepare").stdout

    image(project / "data" / "raw" / "unlabeled" / "new" / "n.png", seed=77)
    status = dvc(project, "status", "prepare").stdout
    assert "prepare" in status and "modified:" in status and "data/raw" in status
    second = dvc(project, "repro", "prepare")
    assert ran_stages(second.stdout) == ["prepare"]
    m = pd.read_parquet(project / "data" / "prepared" / "manifest.parquet")
    assert "../raw/unlabeled/new/n.png" in set(m["path"]) and len(m) == 14
    assert ran_stages(dvc(project, "repro", "prepare").stdout) == []


@pytest.mark.parametrize("min_val_items, warned", [(50, True), (5, False)])
def test_prepare_warns_on_a_small_val_split(tmp_path, capsys, min_val_items, warned):
    from stages import prepare as prepare_stage

    raw = copy.deepcopy(SHIPPED)
    raw["data"].update(subset=120, labeled_fraction=0.2, min_val_items=min_val_items)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(raw))
    prepare_stage.main(["--params", str(params_file), "--out-dir", str(tmp_path / "prepared")])
    val = int((pd.read_parquet(tmp_path / "prepared" / "manifest.parquet")["split"] == "val").sum())
    assert 5 <= val < 50
    err = capsys.readouterr().err
    expected = f"prepare: warning: val holds {val} items, fewer than data.min_val_items ({min_val_items});"
    assert (expected in err) is warned
    assert len(err.strip().splitlines()) == (1 if warned else 0)
