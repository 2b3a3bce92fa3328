"""Image checks: unreadable files named in errors, with stable reasons."""

from __future__ import annotations

import pytest

from selftrain.errors import DataError
from selftrain.sources import check_image, read_folders
from sources_fixtures import folder_tree, folders_config, image, truncate


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


def test_check_image_reasons_are_stable(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG garbage")
    assert check_image(bad) == check_image(bad)
    assert "0x" not in check_image(bad)[0]
    assert check_image(tmp_path / "missing.png") == ("file not found", "")
    good = image(tmp_path / "g.jpg", fmt="JPEG", mode="RGB", size=(300, 200))
    assert check_image(good)[0] is None
