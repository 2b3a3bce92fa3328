"""Bring-your-own-data sources: folders and manifests, their errors, and DVC reruns."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import REPO_ROOT, dvc, git, make_project, ran_stages, tiny_params
from selftrain.config import DataConfig, params_from_dict
from selftrain.data import TRUTH_COLUMN
from selftrain.errors import ConfigError, DataError
from selftrain.sources import check_image, prepare_source, read_folders, read_manifest
from selftrain.truth import TRUTH_FILE, read_truth

SHIPPED = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def image(path: Path, size=(9, 7), mode="L", fmt="PNG", seed=0) -> Path:
    """A tiny random image file (size is width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode="L" if mode == "L" else "RGB").save(path, fmt)
    return path


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def folder_tree(raw: Path, classes=("cat", "dog"), per_class=6, unlabeled=4) -> Path:
    """labeled/<class>/ with grey, colour, JPEG and odd-sized images; a nested unlabeled/ pool."""
    kinds = [
        dict(mode="L", fmt="PNG", size=(9, 7)),
        dict(mode="RGB", fmt="PNG", size=(13, 5)),
        dict(mode="RGB", fmt="JPEG", size=(31, 17)),
        dict(mode="L", fmt="JPEG", size=(8, 8)),
    ]
    for c, name in enumerate(classes):
        for i in range(per_class):
            kind = kinds[i % len(kinds)]
            suffix = ".jpg" if kind["fmt"] == "JPEG" else ".png"
            image(raw / "labeled" / name / f"{i:02d}{suffix}", seed=100 * c + i, **kind)
    for i in range(unlabeled):
        kind = kinds[i % len(kinds)]
        suffix = ".jpeg" if kind["fmt"] == "JPEG" else ".PNG"
        image(raw / "unlabeled" / f"day{i % 2}" / "cam" / f"u{i}{suffix}", seed=1000 + i, **kind)
    return raw


def folders_config(raw: Path, **changes) -> DataConfig:
    return DataConfig(source="folders", raw_dir=str(raw), **changes)


# --- folders -------------------------------------------------------------------


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


def test_data_classes_set_the_index_order(tmp_path):
    raw = folder_tree(tmp_path / "raw")
    result = read_folders(raw, folders_config(raw, classes=("dog", "cat")), 0, tmp_path / "out")
    assert result.class_names == ("dog", "cat")
    m = result.manifest
    assert (m.loc[m["item_id"].str.startswith("labeled/dog/"), "label"] == 0).all()


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


@pytest.mark.parametrize(
    "damage, name",
    [
        (lambda p: p.write_bytes(b"definitely not an image"), "00.png"),
        (truncate, "00.png"),
        (truncate, "02.jpg"),
    ],
    ids=["garbage", "truncated-png", "truncated-jpeg"],
)
def test_bad_labeled_image_is_an_error_naming_it(tmp_path, damage, name):
    raw = folder_tree(tmp_path / "raw")
    damage(raw / "labeled" / "dog" / name)
    with pytest.raises(DataError, match=rf"labeled/dog/{name}: (damaged|not a PNG)"):
        read_folders(raw, folders_config(raw), 0, tmp_path / "out")


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


def test_check_image_reasons_are_stable(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG garbage")
    assert check_image(bad) == check_image(bad)
    assert "0x" not in check_image(bad)[0]
    assert check_image(tmp_path / "missing.png") == ("file not found", "")
    good = image(tmp_path / "g.jpg", fmt="JPEG", mode="RGB", size=(300, 200))
    assert check_image(good)[0] is None


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


# --- manifest --------------------------------------------------------------------


def manifest_tree(raw: Path) -> list[dict]:
    """Images under raw/images and the rows of a manifest describing them."""
    rows = []
    for c, name in enumerate(("None", "7")):  # class names a careless reader would turn into NA / int
        for i in range(5):
            rel = f"images/{name}_{i}.png"
            image(raw / rel, seed=10 * c + i, mode="RGB" if i % 2 else "L")
            rows.append({"path": rel, "label": name, "split": "", "group_id": f"g{i % 2}", "score": i})
    rows[0]["split"] = rows[5]["split"] = "test"
    rows[1]["split"] = rows[6]["split"] = "val"
    for i in range(3):
        rel = f"pool/sub/u{i}.jpg"
        image(raw / rel, fmt="JPEG", mode="RGB", seed=50 + i, size=(20, 11))
        rows.append({"path": rel, "label": "", "split": "", "group_id": "g9", "score": 10 + i})
    rows[-1].update(label="7", split="unlabeled")  # ground truth of an unlabeled image
    return rows


def manifest_config(raw: Path, manifest: Path, **changes) -> DataConfig:
    return DataConfig(source="manifest", raw_dir=str(raw), manifest=str(manifest), **changes)


def write_manifest(rows: list[dict] | pd.DataFrame, file: Path) -> Path:
    frame = pd.DataFrame(rows)
    if file.suffix == ".csv":
        frame.to_csv(file, index=False)
    else:
        frame.to_parquet(file, index=False)
    return file


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


def test_manifest_item_ids_and_absolute_paths_inside_root(tmp_path):
    raw = tmp_path / "raw"
    rows = manifest_tree(raw)
    for i, row in enumerate(rows):
        row["item_id"] = f"id-{i}"
    rows[1]["path"] = str(raw / rows[1]["path"])
    file = write_manifest(rows, raw / "m.csv")
    m = read_manifest(file, manifest_config(raw, file), 0, tmp_path / "out").manifest
    assert m["item_id"].tolist() == [f"id-{i}" for i in range(len(rows))]
    assert m["path"].iloc[1] == "../raw/images/None_1.png"


def bad_manifest(tmp_path, change, suffix=".csv", **config):
    raw = tmp_path / "raw"
    rows = pd.DataFrame(manifest_tree(raw))
    rows = change(rows, raw) if change else rows
    file = write_manifest(rows, raw / f"m{suffix}")
    return lambda: read_manifest(file, manifest_config(raw, file, **config), 0, tmp_path / "out")


def _set(row, column, value):
    def change(rows, raw):
        rows.loc[row, column] = value
        return rows

    return change


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r, raw: r.drop(columns=["label"]), r"m.csv: missing required column 'label'; columns are"),
        (lambda r, raw: r.drop(columns=["path"]), r"m.csv: missing required column 'path'"),
        (_set(4, "path", "images/../images/None_0.png"), r"m.csv: line 6: path .* is the same file as .*m.csv: line 2"),
        (_set(2, "path", "images/nope.png"), r"m.csv: line 4 \(.*images/nope.png\): file not found"),
        (_set(2, "path", ""), r"m.csv: line 4: empty path"),
        (_set(2, "split", "train"), r"m.csv: line 4: split 'train'; expected one of"),
        (_set(2, "label", ""), None),  # becomes unlabeled: fine
        (lambda r, raw: r.assign(split=np.where(r.index == 2, "val", r["split"]), label=np.where(r.index == 2, "", r["label"])),
         r"m.csv: line 4: split 'val' needs a label"),
        (lambda r, raw: r.assign(true_label=1), r"column 'true_label' is reserved"),
        (lambda r, raw: r.assign(pred=1), r"column 'pred' is also a column of the round tables"),
        (_set(2, "path", "../outside.png"), r"m.csv: line 4: path '../outside.png' resolves to .*outside.png, outside the data root"),
        (_set(2, "path", "/etc/hostname"), r"m.csv: line 4: path '/etc/hostname' resolves to .* outside the data root"),
        (lambda r, raw: r.iloc[:0], r"m.csv: the manifest has no rows"),
        (lambda r, raw: r[(r["label"] != "") & (r["split"] != "unlabeled")], r"m.csv: no readable unlabeled images"),
    ],
    ids=[
        "no-label-column", "no-path-column", "duplicate-path", "missing-file",
        "empty-path", "bad-split", "empty-label-ok", "val-without-label", "truth-column",
        "round-column", "dotdot-outside", "absolute-outside", "no-rows", "no-unlabeled",
    ],
)
def test_manifest_errors_name_the_row_or_column(tmp_path, change, message):
    run = bad_manifest(tmp_path, change)
    if message is None:
        assert len(run().manifest) == 13
        return
    with pytest.raises(DataError, match=message):
        run()


def test_label_not_in_data_classes_names_the_row(tmp_path):
    run = bad_manifest(tmp_path, _set(3, "label", "horse"), classes=("7", "None"))
    with pytest.raises(DataError, match=r"m.csv: line 5: label 'horse' is not in the class list \['7', 'None'\]"):
        run()


def test_damaged_labeled_image_in_manifest_names_the_row(tmp_path):
    def change(rows, raw):
        truncate(raw / rows.loc[3, "path"])
        return rows

    with pytest.raises(DataError, match=r"m.parquet: row 3 \(.*images/None_3.png\): damaged or truncated"):
        bad_manifest(tmp_path, change, suffix=".parquet")()


def test_symlink_out_of_the_root_is_refused_unless_allowed(tmp_path):
    outside = image(tmp_path / "outside" / "secret.png", mode="RGB")

    def change(rows, raw):
        (raw / "images" / "link.png").symlink_to(outside)
        rows.loc[2, "path"] = "images/link.png"
        return rows

    with pytest.raises(DataError, match=r"line 4: path 'images/link.png' resolves to .*outside/secret.png"):
        bad_manifest(tmp_path, change)()
    m = bad_manifest(tmp_path / "again", change, allow_outside_root=True)().manifest
    assert "../raw/images/link.png" in set(m["path"])


def test_links_into_the_dvc_cache_stay_inside_the_root(tmp_path):
    # With `dvc config cache.type symlink`, files under data/raw link into .dvc/cache:
    # they count as inside the root, and manifests keep the path under data/raw.
    project = tmp_path / "project"
    cached = image(project / ".dvc" / "cache" / "files" / "md5" / "ab" / "cdef0123", mode="RGB")
    raw = project / "data" / "raw"
    rows = manifest_tree(raw)
    (raw / "images" / "linked.png").symlink_to(cached)
    rows[2]["path"] = "images/linked.png"
    file = write_manifest(rows, raw / "m.csv")
    out = project / "data" / "prepared"
    m = read_manifest(file, manifest_config(raw, file), 0, out).manifest
    assert "../raw/images/linked.png" in set(m["path"])
    folder_tree(raw)
    (raw / "labeled" / "cat" / "linked.png").symlink_to(cached)
    m = read_folders(raw, folders_config(raw), 0, out).manifest
    assert "../raw/labeled/cat/linked.png" in set(m["path"])
    assert not m["path"].str.contains(".dvc").any()


def test_outside_paths_stay_relative_when_allowed(tmp_path):
    outside = image(tmp_path / "shared" / "x.png", mode="RGB")
    change = _set(2, "path", "../shared/x.png")
    m = bad_manifest(tmp_path, change, allow_outside_root=True)().manifest
    assert "../shared/x.png" in set(m["path"])
    assert outside.is_file()


def test_manifest_outside_the_root_is_refused(tmp_path):
    raw = tmp_path / "raw"
    file = write_manifest(manifest_tree(raw), tmp_path / "m.csv")
    with pytest.raises(DataError, match=r"m.csv: the manifest lies outside data.raw_dir"):
        read_manifest(file, manifest_config(raw, file), 0, tmp_path / "out")
    with pytest.raises(DataError, match=r"nope.csv: manifest not found"):
        read_manifest(raw / "nope.csv", manifest_config(raw, raw / "nope.csv"), 0, tmp_path / "out")


def test_unreadable_manifest_file_is_a_data_error(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "m.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"m.parquet: cannot read the manifest"):
        read_manifest(raw / "m.parquet", manifest_config(raw, raw / "m.parquet"), 0, tmp_path / "out")


# --- config ------------------------------------------------------------------------


def with_data(**data):
    raw = copy.deepcopy(SHIPPED)
    raw["data"].update(data)
    return raw


@pytest.mark.parametrize(
    "data, message",
    [
        ({"source": "s3"}, r"data.source: must be one of \['digits', 'folders', 'manifest'\]"),
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


# --- random manifests --------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
READABLE = ["images/a0.png", "images/a1.png", "images/b0.png", "images/b1.png", "images/c.jpg", "pool/u.png"]
GOOD_PATHS = st.sampled_from(
    ["images/a0.png", "images/a1.png", "images/b0.png", "images/b1.png", "images/c.jpg", "pool/u.png",
     "images/bad.png", "./images/a0.png", "missing.png"]
)
ODD_PATHS = st.one_of(st.none(), TEXT, st.sampled_from(["", "../escape.png", "/etc/passwd", "images", "a\x00b"]))
LABELS = st.sampled_from(["a", "b", "c", "", " a ", "None", "NA"])
SPLITS = st.sampled_from(["", "labeled", "unlabeled", "val", "test", " Val ", "train"])
# Each column is one type per example (a Parquet column has one type).
TEXT_CELLS = st.one_of(st.none(), GOOD_PATHS, LABELS, SPLITS, TEXT)
METADATA_CELLS = st.one_of(
    st.lists(TEXT_CELLS, min_size=1, max_size=10),
    st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=1, max_size=10),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=10),
)
METADATA_NAMES = st.sampled_from(["group_id", "score", "", "x y", "Unnamed: 0", "split ", "pred", TRUTH_COLUMN])
GOOD = pd.DataFrame(
    {
        "path": ["images/a0.png", "images/a1.png", "images/b0.png", "images/b1.png", "images/c.jpg", "pool/u.png"],
        "label": ["a", "a", "b", "b", "a", None],
        "split": ["test", "val", "test", "val", "", ""],
        "group_id": [1, 2, 3, 4, 5, 6],
    }
)


@pytest.fixture(scope="module")
def random_root(tmp_path_factory):
    raw = tmp_path_factory.mktemp("random") / "raw"
    for i, rel in enumerate(READABLE):
        image(raw / rel, seed=i, **(dict(fmt="JPEG", mode="RGB") if rel.endswith(".jpg") else {}))
    (raw / "images" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return raw


@st.composite
def manifests(draw):
    """A manifest frame, a file type and data.classes: mostly plausible, sometimes not."""
    if draw(st.integers(0, 2)) == 0:
        # Near-valid: distinct readable images, two classes, unlabeled rows; small changes
        # (missing classes, too few rows for a split) still fail, with our errors.
        paths = draw(st.permutations(READABLE))[: draw(st.integers(3, len(READABLE)))]
        frame = pd.DataFrame({"path": paths, "label": draw(st.lists(st.sampled_from(["a", "b", None]), min_size=len(paths), max_size=len(paths)))})
        if draw(st.booleans()):
            frame["split"] = draw(st.lists(st.sampled_from(["", "", "test", "val"]), min_size=len(paths), max_size=len(paths)))
        frame["group_id"] = range(len(paths))
        return frame, draw(st.sampled_from([".csv", ".parquet"])), None
    n = draw(st.integers(1, 9))

    def column(cells, unique=False):
        return draw(st.lists(cells, min_size=n, max_size=n, unique=unique))

    columns = {}
    if draw(st.integers(0, 9)):  # 9 in 10 have each required column
        unique = draw(st.integers(0, 4)) > 0  # duplicates are one error among many
        odd = draw(st.integers(0, 3)) == 0  # odd paths in 1 of 4 manifests
        columns["path"] = column(st.one_of(GOOD_PATHS, ODD_PATHS) if odd else GOOD_PATHS, unique=unique)
    if draw(st.integers(0, 9)):
        cells = draw(st.sampled_from([st.one_of(LABELS, LABELS, st.none(), TEXT), st.one_of(st.none(), st.integers(0, 2))]))
        columns["label"] = column(cells)
    if draw(st.booleans()):
        columns["split"] = column(st.one_of(st.none(), SPLITS))
    if draw(st.integers(0, 4)) == 0:
        columns["item_id"] = column(st.one_of(st.none(), TEXT))
    for name in draw(st.lists(METADATA_NAMES, max_size=2, unique=True)):
        if name in ("pred", TRUTH_COLUMN) and draw(st.integers(0, 3)):
            continue  # reserved names: an error worth testing, but not in every example
        columns[name] = (draw(METADATA_CELLS) * n)[:n]
    classes = draw(st.one_of(st.none(), st.none(), st.none(), st.lists(st.sampled_from(["a", "b", "c", "", 1]), max_size=4)))
    return pd.DataFrame(columns), draw(st.sampled_from([".csv", ".parquet"])), classes


@settings(max_examples=200, deadline=None)
@given(manifests())
@example((GOOD, ".csv", None))
@example((GOOD, ".parquet", ["b", "a"]))
@example((GOOD.assign(path=["a\x00b", *GOOD["path"][1:]]), ".csv", None))  # os.path raises ValueError on NUL
@example((GOOD.assign(label=[1, 1, 2, 2, 1, None]), ".parquet", None))  # ints with nulls arrive as floats
@example((GOOD.assign(label=["None", "None", "NA", "NA", "None", ""]), ".csv", None))
@example((GOOD.iloc[:0], ".csv", None))
def test_random_manifests_pass_or_fail_with_our_errors(random_root, tmp_path_factory, case):
    frame, suffix, classes = case
    file = random_root / f"manifest{suffix}"
    try:
        write_manifest(frame, file)
    except (ValueError, TypeError, OverflowError):  # pyarrow refuses some mixed columns
        assume(False)
    data = {"source": "manifest", "raw_dir": str(random_root), "manifest": str(file)}
    if classes is not None:
        data["classes"] = classes
    out = tmp_path_factory.mktemp("out")
    try:
        config = params_from_dict(with_data(**data)).data
        result = read_manifest(file, config, 0, out)
    except (DataError, ConfigError) as exc:
        assert str(exc).strip()
        return
    m = result.manifest
    assert m["item_id"].is_unique and m["path"].is_unique
    assert set(m["split"]) == {"labeled", "unlabeled", "val", "test"}
    assert not m["path"].str.startswith("/").any()
    if frame.equals(GOOD):
        assert len(m) == 6 and "group_id" in m.columns


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
