"""`selftrain review --promote`: corrected pool items into the labeled set of the manifest or folders source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from refine_fixtures import BED, LAMP, NAMES
from selftrain.config import DataConfig
from selftrain.errors import ConfigError, DataError
from selftrain.refine.corrections import Corrections
from selftrain.refine.label_corrections import LabelCorrections
from selftrain.review.promote import promote


def pool(*item_ids: str) -> pd.DataFrame:
    return pd.DataFrame({"item_id": list(item_ids), "split": ["unlabeled"] * len(item_ids)})


def test_folders_copy_the_image_into_its_class_folder(tmp_path):
    raw = tmp_path / "data/raw"
    (raw / "unlabeled/sub").mkdir(parents=True)
    (raw / "labeled/bed").mkdir(parents=True)
    (raw / "unlabeled/sub/a.png").write_bytes(b"image a")
    (raw / "unlabeled/b.png").write_bytes(b"image b")
    corrections = Corrections({"unlabeled/sub/a.png": LAMP, "unlabeled/b.png": None, "unlabeled/gone.png": BED})
    config = DataConfig(source="folders")
    done = promote(corrections, pool("unlabeled/sub/a.png", "unlabeled/b.png"), NAMES, config, tmp_path)
    assert done.written == ["unlabeled/sub/a.png"] and done.not_in_pool == ["unlabeled/gone.png"]
    assert (raw / "labeled/lamp/sub__a.png").read_bytes() == b"image a"
    assert (raw / "unlabeled/sub/a.png").exists()  # copied, not moved
    assert not list((raw / "labeled").rglob("b.png"))  # a drop is not promoted
    again = promote(corrections, pool("unlabeled/sub/a.png", "unlabeled/b.png"), NAMES, config, tmp_path)
    assert again.written == [] and again.already == ["unlabeled/sub/a.png"]


def test_folders_missing_image_is_an_error_and_nothing_is_copied(tmp_path):
    raw = tmp_path / "data/raw"
    (raw / "unlabeled").mkdir(parents=True)
    (raw / "unlabeled/a.png").write_bytes(b"a")
    corrections = Corrections({"unlabeled/a.png": LAMP, "unlabeled/lost.png": BED})
    with pytest.raises(DataError, match="lost.png"):
        promote(corrections, pool("unlabeled/a.png", "unlabeled/lost.png"), NAMES, DataConfig(source="folders"), tmp_path)
    assert not (raw / "labeled").exists()


def test_manifest_csv_gets_the_label_and_the_labeled_split(tmp_path):
    raw = tmp_path / "data/raw"
    raw.mkdir(parents=True)
    (raw / "manifest.csv").write_text("path,label,width\nimg/a.png,,3\nimg/b.png,bed,4.50\nimg/c.png,,5\n")
    config = DataConfig(source="manifest", manifest="data/raw/manifest.csv")
    done = promote(Corrections({"img/a.png": LAMP}), pool("img/a.png", "img/c.png"), NAMES, config, tmp_path)
    assert done.written == ["img/a.png"]
    assert (raw / "manifest.csv").read_text() == (
        "path,label,width,split\nimg/a.png,lamp,3,labeled\nimg/b.png,bed,4.50,\nimg/c.png,,5,\n"
    )


def test_manifest_parquet_by_item_id(tmp_path):
    raw = tmp_path / "data/raw"
    raw.mkdir(parents=True)
    frame = pd.DataFrame(
        {"path": ["a.png", "b.png"], "label": [None, None], "split": ["unlabeled", "unlabeled"], "item_id": ["x", "y"]}
    )
    frame.to_parquet(raw / "m.parquet")
    config = DataConfig(source="manifest", manifest="data/raw/m.parquet")
    promote(Corrections({"y": BED}), pool("x", "y"), NAMES, config, tmp_path)
    back = pd.read_parquet(raw / "m.parquet")
    assert back["label"].isna().tolist() == [True, False] and back["label"][1] == "bed"
    assert back["split"].tolist() == ["unlabeled", "labeled"]


def test_manifest_without_the_item_is_an_error_and_unchanged(tmp_path):
    raw = tmp_path / "data/raw"
    raw.mkdir(parents=True)
    text = "path,label\nimg/a.png,\n"
    (raw / "manifest.csv").write_text(text)
    config = DataConfig(source="manifest", manifest="data/raw/manifest.csv")
    with pytest.raises(DataError, match="no row for corrected item"):
        promote(Corrections({"img/other.png": LAMP}), pool("img/other.png"), NAMES, config, tmp_path)
    assert (raw / "manifest.csv").read_text() == text


def test_digits_cannot_be_promoted(tmp_path):
    with pytest.raises(ConfigError, match="promotion needs your own data"):
        promote(Corrections({"1": LAMP}), pool("1"), NAMES, DataConfig(), tmp_path)


# --- round trip: after promotion, the source reader sees the item as labeled ---------


def test_promoted_manifest_row_is_read_back_as_labeled(tmp_path):
    from sources_fixtures import manifest_config, manifest_tree, write_manifest
    from selftrain.sources.manifest import read_manifest

    raw = tmp_path / "raw"
    file = write_manifest(manifest_tree(raw), raw / "manifest.csv")
    config = manifest_config(raw, file)
    before = read_manifest(file, config, 0, tmp_path / "out")
    names = before.class_names
    promote(Corrections({"pool/sub/u0.jpg": names.index("7")}), before.manifest, names, config, tmp_path)
    after = read_manifest(file, config, 0, tmp_path / "out").manifest.set_index("item_id")
    assert after.loc["pool/sub/u0.jpg", "split"] == "labeled"
    assert after.loc["pool/sub/u0.jpg", "label"] == names.index("7")


def test_promoted_folder_image_is_read_back_as_labeled(tmp_path):
    from sources_fixtures import folder_tree, folders_config
    from selftrain.sources.folders import read_folders

    raw = folder_tree(tmp_path / "raw")
    config = folders_config(raw)
    before = read_folders(raw, config, 0, tmp_path / "out")
    item = "unlabeled/day0/cam/u0.PNG"
    assert item in set(before.manifest["item_id"])
    promote(Corrections({item: before.class_names.index("cat")}), before.manifest, before.class_names, config, tmp_path)
    after = read_folders(raw, config, 0, tmp_path / "out").manifest.set_index("item_id")
    promoted = after.loc["labeled/cat/day0__cam__u0.PNG"]
    assert promoted["split"] != "unlabeled" and promoted["label"] == before.class_names.index("cat")


# --- a multilabel run: the corrected set goes into the manifest's labels column ------


def label_corrections(sets: dict[str, list[str] | None]) -> LabelCorrections:
    """LabelCorrections as read from a file: item_id -> (C,) bool set, None for a drop."""
    rows = {item: None if names is None else np.isin(NAMES, names) for item, names in sets.items()}
    return LabelCorrections(rows, source="corrections.csv")


def test_label_sets_go_into_a_csv_manifests_labels_column_drops_stay_out(tmp_path):
    raw = tmp_path / "data/raw"
    raw.mkdir(parents=True)
    (raw / "manifest.csv").write_text(
        "path,labels,split\nimg/a.png,,\nimg/b.png,bed|lamp,labeled\nimg/c.png,,\nimg/d.png,,unlabeled\n"
    )
    config = DataConfig(source="manifest", manifest="data/raw/manifest.csv")
    corrections = label_corrections(
        {"img/a.png": ["lamp", "dresser", "bed"], "img/c.png": [], "img/d.png": None, "img/gone.png": ["bed"]}
    )
    done = promote(corrections, pool("img/a.png", "img/c.png", "img/d.png"), NAMES, config, tmp_path)
    assert done.written == ["img/a.png", "img/c.png"] and done.not_in_pool == ["img/gone.png"]
    # The set in class order; the empty set an empty cell on a labeled row; the drop (d) untouched.
    assert (raw / "manifest.csv").read_text() == (
        "path,labels,split\nimg/a.png,bed|dresser|lamp,labeled\nimg/b.png,bed|lamp,labeled\n"
        "img/c.png,,labeled\nimg/d.png,,unlabeled\n"
    )
    again = promote(corrections, pool("img/a.png", "img/c.png", "img/d.png"), NAMES, config, tmp_path)
    assert again.written == [] and again.already == ["img/a.png", "img/c.png"]


def test_label_sets_go_into_a_parquet_manifests_labels_column(tmp_path):
    raw = tmp_path / "data/raw"
    raw.mkdir(parents=True)
    frame = pd.DataFrame(
        {"path": ["a.png", "b.png", "c.png"], "labels": [None, None, "island"], "item_id": ["x", "y", "z"]}
    )
    frame.to_parquet(raw / "m.parquet")
    config = DataConfig(source="manifest", manifest="data/raw/m.parquet")
    done = promote(label_corrections({"x": ["lamp", "island"], "y": []}), pool("x", "y"), NAMES, config, tmp_path)
    assert done.written == ["x", "y"]
    back = pd.read_parquet(raw / "m.parquet")
    assert back["labels"].tolist() == ["island|lamp", "", "island"]
    assert back["split"][:2].tolist() == ["labeled", "labeled"] and pd.isna(back["split"][2])  # the column is added


def test_a_parquet_labels_column_of_lists_stays_lists(tmp_path):
    raw = tmp_path / "data/raw"
    raw.mkdir(parents=True)
    frame = pd.DataFrame({"path": ["a.png", "b.png"], "labels": [None, ["bed"]], "item_id": ["x", "y"]})
    frame.to_parquet(raw / "m.parquet")
    config = DataConfig(source="manifest", manifest="data/raw/m.parquet")
    promote(label_corrections({"x": ["lamp", "bed"]}), pool("x"), NAMES, config, tmp_path)
    back = pd.read_parquet(raw / "m.parquet")
    assert [list(cell) for cell in back["labels"]] == [["bed", "lamp"], ["bed"]]


def test_label_sets_cannot_go_into_folders_or_the_built_in_mosaics(tmp_path):
    corrections = label_corrections({"1": ["bed"]})
    with pytest.raises(ConfigError, match="cannot hold label sets; a multilabel run promotes into a manifest"):
        promote(corrections, pool("1"), NAMES, DataConfig(source="folders"), tmp_path)
    with pytest.raises(ConfigError, match=r"'digits-mosaic' is built in .* \(data.source: manifest, with a labels"):
        promote(corrections, pool("1"), NAMES, DataConfig(source="digits-mosaic"), tmp_path)


def test_promoted_label_set_rows_are_read_back_as_labeled_with_their_sets(tmp_path):
    from sources_fixtures import image, manifest_config, write_manifest
    from selftrain.sources.manifest import read_manifest

    raw = tmp_path / "raw"
    sets = ["bed", "lamp|island", "dresser"]
    rows = [{"path": f"img/l{i}.png", "labels": sets[i % 3], "split": ""} for i in range(6)]
    rows += [{"path": f"img/u{i}.png", "labels": "", "split": ""} for i in range(3)]
    for i, row in enumerate(rows):
        image(raw / row["path"], seed=i)
    file = write_manifest(rows, raw / "manifest.csv")
    config = manifest_config(raw, file)
    before = read_manifest(file, config, 0, tmp_path / "out", task="multilabel")
    names = before.class_names
    corrections = LabelCorrections(
        {"img/u0.png": np.isin(names, ["lamp", "bed"]), "img/u1.png": np.zeros(len(names), dtype=bool)}
    )
    promote(corrections, before.manifest, names, config, tmp_path)
    after = read_manifest(file, config, 0, tmp_path / "out", task="multilabel").manifest.set_index("item_id")
    assert after.loc["img/u0.png", "labels"] == "bed|lamp" and after.loc["img/u0.png", "split"] == "labeled"
    assert after.loc["img/u1.png", "labels"] == "" and after.loc["img/u1.png", "split"] == "labeled"
    assert after.loc["img/u2.png", "split"] == "unlabeled"
