"""The digits-mosaic source (selftrain.sources.mosaic): deterministic, labels match cells, splits apart."""

from __future__ import annotations

import numpy as np
import pytest

from selftrain.config import DataConfig
from selftrain.data import SPLITS, digits_images
from selftrain.errors import ConfigError, DataError
from selftrain.sources.mosaic import (
    BLANK,
    LABELS_COLUMN,
    TRUE_LABELS_COLUMN,
    MosaicOptions,
    build_mosaics,
)

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
