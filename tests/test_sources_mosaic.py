"""The digits-mosaic source (selftrain.sources.mosaic): deterministic, labels match cells, splits apart,
and the prepared directory it writes (manifest, truth file, PNGs) as the multilabel contract says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import tiny_params
from selftrain.config import DataConfig
from selftrain.data import CLASSES_FILE, IMAGE_SIZE_FILE, MANIFEST_FILE, SPLITS, STATS_FILE, digits_images, load_dataset
from selftrain.errors import ConfigError, DataError
from selftrain.label_columns import label_lists, split_labels
from selftrain.params_data import MosaicConfig
from selftrain.sources import prepare_source
from selftrain.sources.mosaic import (
    BLANK,
    LABELS_COLUMN,
    TRUE_LABELS_COLUMN,
    MosaicOptions,
    build_mosaics,
    render_mosaics,
)
from selftrain.sources.stats import write_stats
from selftrain.truth import TRUTH_FILE, read_truth
from stages import prepare as prepare_stage

# The digits source's own fractions, with more labeled digits so small counts still show all ten.
CONFIG = DataConfig(labeled_fraction=0.2)


def test_the_same_seed_gives_identical_mosaics_and_another_seed_different_ones():
    a = build_mosaics(MosaicOptions(count=200, seed=3), CONFIG)
    b = build_mosaics(MosaicOptions(count=200, seed=3), CONFIG)
    c = build_mosaics(MosaicOptions(count=200, seed=4), CONFIG)
    assert np.array_equal(a.images, b.images)
    assert np.array_equal(a.cell_sources, b.cell_sources)
    assert a.items.equals(b.items)
    assert not np.array_equal(a.images, c.images)


def test_each_cell_is_its_recorded_digit_and_the_labels_are_the_digits_shown():
    mosaics = build_mosaics(MosaicOptions(count=150, blank_share=0.3, seed=1), CONFIG)
    digits, digit_labels, class_names = digits_images()
    assert mosaics.images.shape == (150, 16, 16) and mosaics.images.dtype == np.uint8
    for image, sources, (_, item) in zip(mosaics.images, mosaics.cell_sources, mosaics.items.iterrows()):
        expected: set[str] = set()
        for cell, source in enumerate(sources):
            row, col = divmod(cell, 2)
            block = image[row * 8 : row * 8 + 8, col * 8 : col * 8 + 8]
            if source == BLANK:
                assert not block.any()
            else:
                assert np.array_equal(block, digits[source])
                expected.add(class_names[digit_labels[source]])
        labels = item[TRUE_LABELS_COLUMN] if item["split"] == "unlabeled" else item[LABELS_COLUMN]
        assert labels == sorted(expected)  # class order is "0".."9", the sorted order


def test_unlabeled_rows_carry_their_labels_only_in_the_canary_column():
    items = build_mosaics(MosaicOptions(count=200, seed=0), CONFIG).items
    unlabeled = items["split"] == "unlabeled"
    assert items.loc[unlabeled, LABELS_COLUMN].isna().all()
    assert items.loc[unlabeled, TRUE_LABELS_COLUMN].notna().all()
    assert items.loc[~unlabeled, LABELS_COLUMN].notna().all()
    assert items.loc[~unlabeled, TRUE_LABELS_COLUMN].isna().all()


@pytest.mark.parametrize("share", [0.0, 0.25, 0.6])
def test_the_blank_share_is_respected(share):
    mosaics = build_mosaics(MosaicOptions(count=400, blank_share=share, seed=2), CONFIG)
    blank = mosaics.cell_sources == BLANK
    # Exact per split up to rounding: at most half a cell per split off.
    assert abs(blank.sum() - share * blank.size) <= len(SPLITS) / 2
    for split in SPLITS:
        rows = (mosaics.items["split"] == split).to_numpy()
        assert abs(blank[rows].mean() - share) <= 0.5 / blank[rows].size + 1e-12


def test_an_all_blank_mosaic_has_the_empty_label_set():
    # Half the cells blank in 400 mosaics: about 25 have all four blank.
    mosaics = build_mosaics(MosaicOptions(count=400, blank_share=0.5, seed=0), CONFIG)
    all_blank = (mosaics.cell_sources == BLANK).all(axis=1)
    assert all_blank.any()
    items = mosaics.items[all_blank]
    columns = zip(items["split"], items[LABELS_COLUMN], items[TRUE_LABELS_COLUMN])
    labels = [truth if split == "unlabeled" else given for split, given, truth in columns]
    assert labels == [[]] * len(items)
    assert not mosaics.images[all_blank].any()


def test_the_splits_share_mosaics_by_the_fractions_and_no_digits_image():
    mosaics = build_mosaics(MosaicOptions(count=1000, seed=0), CONFIG)
    splits = mosaics.items["split"].to_numpy()
    counts = {split: int((splits == split).sum()) for split in SPLITS}
    assert sum(counts.values()) == 1000
    # test: 0.2 of all; val: 0.1 of the rest; labeled: 0.2 of the rest (a digit or two off by pool rounding).
    assert counts["test"] == pytest.approx(200, abs=2)
    assert counts["val"] == pytest.approx(80, abs=2)
    assert counts["labeled"] == pytest.approx(160, abs=2)
    used = {split: set(mosaics.cell_sources[splits == split].ravel()) - {BLANK} for split in SPLITS}
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            assert not used[a] & used[b], (a, b)


def test_every_digit_appears_in_a_labeled_mosaic_or_the_build_says_which_is_missing():
    labeled = build_mosaics(MosaicOptions(count=300, seed=0), CONFIG).items
    shown = {name for labels in labeled.loc[labeled["split"] == "labeled", LABELS_COLUMN] for name in labels}
    assert shown == {str(d) for d in range(10)}
    with pytest.raises(DataError, match=r"no labeled mosaic shows digit"):
        build_mosaics(MosaicOptions(count=40, blank_share=0.5, seed=0), DataConfig(labeled_fraction=0.05))


def test_a_count_too_small_for_every_split_is_one_error():
    with pytest.raises(DataError, match=r"data.mosaic.count=3 leaves split"):
        build_mosaics(MosaicOptions(count=3), CONFIG)


@pytest.mark.parametrize(
    "kwargs,key",
    [({"count": 0}, "count"), ({"count": 2.5}, "count"), ({"blank_share": 1.5}, "blank_share"), ({"seed": -1}, "seed")],
)
def test_bad_options_name_their_key(kwargs, key):
    with pytest.raises(ConfigError, match=rf"data\.mosaic\.{key}"):
        MosaicOptions(**kwargs)


# --- the prepared directory (data.source: digits-mosaic) -----------------------------


def mosaic_config(**mosaic) -> DataConfig:
    return DataConfig(source="digits-mosaic", labeled_fraction=0.2, mosaic=MosaicConfig(**{"count": 200, **mosaic}))


def pixels(out: Path) -> dict[str, np.ndarray]:
    return {png.name: np.asarray(Image.open(png)) for png in sorted((out / "images").glob("*.png"))}


def test_prepare_writes_the_same_manifest_and_pixels_for_the_same_params(tmp_path):
    a = prepare_source(tmp_path / "a", mosaic_config(seed=5), seed=0, task="multilabel").dataset
    b = prepare_source(tmp_path / "b", mosaic_config(seed=5), seed=1, task="multilabel").dataset
    c = prepare_source(tmp_path / "c", mosaic_config(seed=6), seed=0, task="multilabel").dataset
    assert a.manifest.equals(b.manifest) and len(a.manifest) == 200
    for name in (MANIFEST_FILE, TRUTH_FILE):
        assert pd.read_parquet(tmp_path / "a" / name).equals(pd.read_parquet(tmp_path / "b" / name)), name
    pixels_a, pixels_b = pixels(tmp_path / "a"), pixels(tmp_path / "b")
    assert list(pixels_a) == [f"{i}.png" for i in a.manifest["item_id"]]
    assert pixels_a.keys() == pixels_b.keys()
    assert all(np.array_equal(pixels_a[k], pixels_b[k]) for k in pixels_a)
    # data.mosaic.seed, not params.seed, decides: another mosaic seed gives other labels.
    assert not a.manifest["labels"].equals(c.manifest["labels"])


def test_prepared_images_and_label_sets_are_the_cells_build_mosaics_records(tmp_path):
    config = mosaic_config(blank_share=0.4, seed=2)
    dataset = prepare_source(tmp_path, config, seed=0, task="multilabel").dataset
    truth = read_truth(tmp_path / TRUTH_FILE).set_index("item_id")
    rebuilt = build_mosaics(MosaicOptions.of(config), config)
    digits, digit_labels, class_names = digits_images()
    images = pixels(tmp_path)
    for row, sources in zip(dataset.manifest.itertuples(), rebuilt.cell_sources):
        assert np.array_equal(images[f"{row.item_id}.png"], render_mosaics(sources[None], digits)[0])
        shown = sorted({class_names[digit_labels[s]] for s in sources if s != BLANK})
        given = truth.loc[row.item_id, TRUE_LABELS_COLUMN] if row.split == "unlabeled" else row.labels
        assert split_labels(given) == shown
    assert any(len(split_labels(c)) > 1 for c in dataset.rows("labeled")["labels"])


def test_prepared_directory_follows_the_multilabel_contract(tmp_path):
    prepared = prepare_source(tmp_path, mosaic_config(blank_share=0.5), seed=0, task="multilabel")
    dataset, manifest = prepared.dataset, pd.read_parquet(tmp_path / MANIFEST_FILE)
    assert list(manifest.columns) == ["item_id", "path", "split", "label", "labels"]
    assert manifest["label"].dtype == "Int64" and manifest["label"].isna().all()
    unlabeled = (manifest["split"] == "unlabeled").to_numpy()
    assert manifest.loc[unlabeled, "labels"].isna().all()
    assert manifest.loc[~unlabeled, "labels"].map(type).eq(str).all()
    assert (manifest.loc[~unlabeled, "labels"] == "").any()  # half the cells blank: some empty sets
    truth = pd.read_parquet(tmp_path / TRUTH_FILE)
    assert list(truth.columns) == ["item_id", "true_label", "true_labels"]
    assert sorted(truth["item_id"]) == sorted(manifest.loc[unlabeled, "item_id"])
    assert truth["true_label"].isna().all() and truth["true_labels"].notna().all()
    assert json.loads((tmp_path / CLASSES_FILE).read_text()) == [str(d) for d in range(10)]
    record = json.loads((tmp_path / IMAGE_SIZE_FILE).read_text())
    assert (record["image_size"], record["chosen_by"]) == (16, "auto (digits-mosaic)")
    assert dataset.is_multilabel and "labels" not in dataset.unlabeled().columns
    assert dataset.metadata_columns == ()
    labeled = dataset.labeled()
    targets = dataset.label_targets(labeled)  # (N, 10) 0/1
    assert targets.shape == (len(labeled), 10) and targets.dtype == np.float32
    assert [split_labels(c) for c in labeled["labels"]] == label_lists(targets, dataset.class_names)
    stats = json.loads(write_stats(dataset, tmp_path).read_text())
    assert stats["splits"]["labeled"]["width"]["max"] == 16


def test_an_explicit_image_size_is_recorded_as_given(tmp_path):
    config = DataConfig(source="digits-mosaic", labeled_fraction=0.2, image_size=32, mosaic=MosaicConfig(count=120))
    prepare_source(tmp_path, config, seed=0, task="multilabel")
    record = json.loads((tmp_path / IMAGE_SIZE_FILE).read_text())
    assert (record["image_size"], record["chosen_by"]) == (32, "data.image_size")


def test_the_mosaic_source_in_a_multiclass_run_is_one_error(tmp_path):
    with pytest.raises(ConfigError, match=r"task: the digits-mosaic source gives label sets"):
        prepare_source(tmp_path, mosaic_config(), seed=0, task="multiclass")
    with pytest.raises(ConfigError, match=r"task: multilabel needs data.source digits-mosaic or manifest, not 'digits'"):
        prepare_source(tmp_path, DataConfig(subset=120), seed=0, task="multilabel")


def test_the_prepare_stage_passes_params_task(tmp_path):
    params = tiny_params()
    params["task"] = "multilabel"
    params["data"].update(source="digits-mosaic", subset=0, mosaic={"count": 150, "blank_share": 0.25, "seed": 0})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    prepare_stage.main(["--params", str(tmp_path / "params.yaml"), "--out-dir", str(tmp_path / "prepared")])
    assert load_dataset(tmp_path / "prepared" / MANIFEST_FILE).is_multilabel
    assert (tmp_path / "prepared" / STATS_FILE).is_file()
