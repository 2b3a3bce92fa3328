"""`selftrain review --apply`: a filled-in queue appended to the corrections; bad rows named, nothing written."""

from __future__ import annotations

import pandas as pd
import pytest

from refine_fixtures import NAMES
from selftrain.errors import DataError
from selftrain.review.apply import apply_queue

MANIFEST = pd.DataFrame(
    {
        "item_id": ["u1", "u2", "u3", "l1"],
        "split": ["unlabeled", "unlabeled", "unlabeled", "labeled"],
    }
)
HEADER = "item_id,path,predicted_label,confidence,why,correct_label,note\n"
EXISTING = "item_id,label,note\nu3,lamp,earlier\n"


@pytest.fixture
def files(tmp_path):
    corrections = tmp_path / "corrections.csv"
    corrections.write_text(EXISTING)
    return tmp_path / "queue.csv", corrections


def test_filled_rows_are_appended_and_blank_ones_skipped(files):
    queue, corrections = files
    queue.write_text(HEADER + "u1,a.png,bed,0.4,low,dresser,looks like one\nu2,b.png,bed,0.5,low,,\n")
    assert apply_queue(queue, corrections, MANIFEST, NAMES) == 1
    assert corrections.read_text() == EXISTING + "u1,dresser,looks like one\n"
    queue.write_text(HEADER + "u2,b.png,bed,0.5,low,drop,\n")
    assert apply_queue(queue, corrections, MANIFEST, NAMES) == 1
    assert corrections.read_text().endswith("u2,drop,\n")


def test_a_missing_corrections_file_is_created_with_its_header(tmp_path):
    queue = tmp_path / "queue.csv"
    queue.write_text(HEADER + "u1,a.png,bed,0.4,low,lamp,\n")
    apply_queue(queue, tmp_path / "corrections.csv", MANIFEST, NAMES)
    assert (tmp_path / "corrections.csv").read_text() == "item_id,label,note\nu1,lamp,\n"


@pytest.mark.parametrize(
    "rows, message",
    [
        ("nope,x.png,bed,0.4,low,bed,\n", "line 3: item_id 'nope' is not in the manifest"),
        ("l1,x.png,bed,0.4,low,bed,\n", "line 3: item_id 'l1' is in the 'labeled' split, not the unlabeled pool"),
        ("u1,x.png,bed,0.4,low,sofa,\n", "line 3: correct_label: label 'sofa' is not a class"),
        ("u1,x.png,bed,0.4,low,bed,\nu1,x.png,bed,0.4,low,lamp,\n", "line 4: item_id 'u1' repeats line 3"),
        ("u3,x.png,bed,0.4,low,bed,\n", "line 3: item_id 'u3' is already corrected in"),
    ],
    ids=["unknown-id", "not-in-pool", "unknown-label", "duplicate-in-queue", "already-corrected"],
)
def test_each_bad_row_is_named_and_nothing_is_written(files, rows, message):
    queue, corrections = files
    queue.write_text(HEADER + "u2,b.png,bed,0.5,low,island,\n" + rows)  # a good row first, line 2
    with pytest.raises(DataError) as err:
        apply_queue(queue, corrections, MANIFEST, NAMES)
    assert f"{queue}: {message}" in str(err.value)
    assert len(str(err.value).splitlines()) == 2  # the heading and the one bad row
    assert corrections.read_text() == EXISTING


def test_every_bad_row_gets_its_own_line(files):
    queue, corrections = files
    queue.write_text(HEADER + "nope,x.png,bed,0.4,low,bed,\nu1,x.png,bed,0.4,low,sofa,\n")
    with pytest.raises(DataError) as err:
        apply_queue(queue, corrections, MANIFEST, NAMES)
    lines = str(err.value).splitlines()
    assert lines[0] == f"2 bad row(s) in {queue}; nothing written:"
    assert [line.split(": ")[1] for line in lines[1:]] == ["line 2", "line 3"]
    assert corrections.read_text() == EXISTING
