"""Path safety: manifest paths and the manifest itself stay inside the data root unless allowed."""

from __future__ import annotations

import pytest

from selftrain.errors import DataError
from selftrain.sources import read_folders, read_manifest
from sources_fixtures import bad_manifest, folder_tree, folders_config, image, manifest_config, manifest_tree, set_cell, write_manifest


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
    change = set_cell(2, "path", "../shared/x.png")
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
