"""`selftrain review --promote`: corrected pool items into the labeled set of the manifest or folders source."""

from __future__ import annotations

import pandas as pd
import pytest

from refine_fixtures import BED, LAMP, NAMES
from selftrain.config import DataConfig
from selftrain.errors import ConfigError, DataError
from selftrain.refine.corrections import Corrections
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
