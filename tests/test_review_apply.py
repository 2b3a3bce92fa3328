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


def assert_one_bad_row_and_nothing_written(queue, corrections, manifest, message, before):
    with pytest.raises(DataError) as err:
        apply_queue(queue, corrections, manifest, NAMES)
    assert f"{queue}: {message}" in str(err.value)
    assert len(str(err.value).splitlines()) == 2  # the heading and the one bad row
    assert corrections.read_text() == before


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
    assert_one_bad_row_and_nothing_written(queue, corrections, MANIFEST, message, EXISTING)


def test_every_bad_row_gets_its_own_line(files):
    queue, corrections = files
    queue.write_text(HEADER + "nope,x.png,bed,0.4,low,bed,\nu1,x.png,bed,0.4,low,sofa,\n")
    with pytest.raises(DataError) as err:
        apply_queue(queue, corrections, MANIFEST, NAMES)
    lines = str(err.value).splitlines()
    assert lines[0] == f"2 bad row(s) in {queue}; nothing written:"
    assert [line.split(": ")[1] for line in lines[1:]] == ["line 2", "line 3"]
    assert corrections.read_text() == EXISTING


# --- a multilabel run's queue: correct_labels holds the whole set ---------------------

LABEL_MANIFEST = MANIFEST.assign(labels=[None, None, None, "bed"])
LABEL_HEADER = "item_id,path,predicted_labels,min_margin,why,correct_labels,note\n"
LABEL_EXISTING = "item_id,label,note\nu3,lamp|bed,earlier\n"


def test_label_sets_none_and_drop_are_appended_as_the_multilabel_corrections_file_spells_them(files):
    from selftrain.refine.label_corrections import read_label_corrections

    queue, corrections = files
    corrections.write_text(LABEL_EXISTING)
    queue.write_text(
        LABEL_HEADER
        + "u1,a.png,bed,0.01,low,lamp | bed|lamp,two of them\n"  # any order, spaces, a repeat
        + "u2,b.png,bed,0.02,low,(none),nothing there\n"
        + "u4,c.png,bed,0.03,low,,\n"  # not reviewed, and not in the manifest: never checked
    )
    assert apply_queue(queue, corrections, LABEL_MANIFEST, NAMES) == 2
    assert corrections.read_text() == LABEL_EXISTING + "u1,bed|lamp,two of them\nu2,,nothing there\n"
    queue.write_text(LABEL_HEADER + "u2,b.png,bed,0.02,low,drop,\n")
    with pytest.raises(DataError, match="line 2: item_id 'u2' is already corrected in .*: line 4"):
        apply_queue(queue, corrections, LABEL_MANIFEST, NAMES)
    corrections.write_text(LABEL_EXISTING)
    queue.write_text(LABEL_HEADER + "u1,a.png,bed,0.01,low,dresser|island,\nu2,b.png,bed,0.02,low,drop,\n")
    assert apply_queue(queue, corrections, LABEL_MANIFEST, NAMES) == 2
    assert corrections.read_text() == LABEL_EXISTING + "u1,island|dresser,\nu2,drop,\n"
    read = read_label_corrections(corrections, NAMES)
    assert {item: None if s is None else [NAMES[i] for i in s.nonzero()[0]] for item, s in read.sets.items()} == {
        "u3": ["bed", "lamp"],
        "u1": ["island", "dresser"],
        "u2": None,
    }


def test_the_empty_set_read_back_is_empty_not_a_drop(files):
    from selftrain.refine.label_corrections import read_label_corrections

    queue, corrections = files
    corrections.write_text("item_id,label,note\n")
    queue.write_text(LABEL_HEADER + "u1,a.png,bed,0.01,low,(none),\n")
    apply_queue(queue, corrections, LABEL_MANIFEST, NAMES)
    assert corrections.read_text() == "item_id,label,note\nu1,,\n"
    corrected = read_label_corrections(corrections, NAMES).sets["u1"]
    assert corrected is not None and not corrected.any()


@pytest.mark.parametrize(
    "rows, message",
    [
        ("u1,x.png,bed,0.1,low,bed|sofa,\n", "line 3: correct_labels: label 'sofa' is not a class; expected class"),
        ("u1,x.png,bed,0.1,low,|,\n", "line 3: correct_labels: label '|' names no class; write '(none)'"),
        ("l1,x.png,bed,0.1,low,bed,\n", "line 3: item_id 'l1' is in the 'labeled' split, not the unlabeled pool"),
        ("u1,x.png,bed,0.1,low,bed,\nu1,x.png,bed,0.1,low,lamp,\n", "line 4: item_id 'u1' repeats line 3"),
        ("u3,x.png,bed,0.1,low,(none),\n", "line 3: item_id 'u3' is already corrected in"),
    ],
    ids=["unknown-class", "no-class", "not-in-pool", "duplicate-in-queue", "already-corrected"],
)
def test_each_bad_label_set_row_is_named_and_nothing_is_written(files, rows, message):
    queue, corrections = files
    corrections.write_text(LABEL_EXISTING)
    queue.write_text(LABEL_HEADER + "u2,b.png,bed,0.5,low,island|lamp,\n" + rows)  # a good row first, line 2
    assert_one_bad_row_and_nothing_written(queue, corrections, LABEL_MANIFEST, message, LABEL_EXISTING)


def test_a_queue_of_the_other_task_is_one_named_error(files):
    queue, corrections = files
    queue.write_text(HEADER + "u1,a.png,bed,0.4,low,dresser,\n")
    with pytest.raises(DataError, match=r"'correct_label' .* multiclass run's queue, but this project's task is multilabel"):
        apply_queue(queue, corrections, LABEL_MANIFEST, NAMES)
    queue.write_text(LABEL_HEADER + "u1,a.png,bed,0.4,low,dresser|bed,\n")
    with pytest.raises(DataError, match=r"'correct_labels' .* multilabel run's queue, but this project's task is multiclass"):
        apply_queue(queue, corrections, MANIFEST, NAMES)
    assert corrections.read_text() == EXISTING
