"""The manifest source: CSV and Parquet files, errors naming the row, random manifests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from selftrain.config import params_from_dict
from selftrain.data import TRUTH_COLUMN
from selftrain.errors import ConfigError, DataError
from selftrain.sources import read_manifest
from sources_fixtures import bad_manifest, image, manifest_config, manifest_tree, set_cell, truncate, with_data, write_manifest


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


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r, raw: r.drop(columns=["label"]), r"m.csv: missing required column 'label'; columns are"),
        (lambda r, raw: r.drop(columns=["path"]), r"m.csv: missing required column 'path'"),
        (set_cell(4, "path", "images/../images/None_0.png"), r"m.csv: line 6: path .* is the same file as .*m.csv: line 2"),
        (set_cell(2, "path", "images/nope.png"), r"m.csv: line 4 \(.*images/nope.png\): file not found"),
        (set_cell(2, "path", ""), r"m.csv: line 4: empty path"),
        (set_cell(2, "split", "train"), r"m.csv: line 4: split 'train'; expected one of"),
        (set_cell(2, "label", ""), None),  # becomes unlabeled: fine
        (lambda r, raw: r.assign(split=np.where(r.index == 2, "val", r["split"]), label=np.where(r.index == 2, "", r["label"])),
         r"m.csv: line 4: split 'val' needs a label"),
        (lambda r, raw: r.assign(true_label=1), r"column 'true_label' is reserved"),
        (lambda r, raw: r.assign(pred=1), r"column 'pred' is also a column of the round tables"),
        (set_cell(2, "path", "../outside.png"), r"m.csv: line 4: path '../outside.png' resolves to .*outside.png, outside the data root"),
        (set_cell(2, "path", "/etc/hostname"), r"m.csv: line 4: path '/etc/hostname' resolves to .* outside the data root"),
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
    run = bad_manifest(tmp_path, set_cell(3, "label", "horse"), classes=("7", "None"))
    with pytest.raises(DataError, match=r"m.csv: line 5: label 'horse' is not in the class list \['7', 'None'\]"):
        run()


def test_damaged_labeled_image_in_manifest_names_the_row(tmp_path):
    def change(rows, raw):
        truncate(raw / rows.loc[3, "path"])
        return rows

    with pytest.raises(DataError, match=r"m.parquet: row 3 \(.*images/None_3.png\): damaged or truncated"):
        bad_manifest(tmp_path, change, suffix=".parquet")()


def test_unreadable_manifest_file_is_a_data_error(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "m.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"m.parquet: cannot read the manifest"):
        read_manifest(raw / "m.parquet", manifest_config(raw, raw / "m.parquet"), 0, tmp_path / "out")


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
