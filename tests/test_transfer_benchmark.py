"""The transfer benchmark's pure parts: the class-subset tasks (only the asked digits,
renumbered; source and target disjoint; the source has no pool) and its table's arithmetic
on hand-made records. No training."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.transfer import (
    SOURCE_DIGITS,
    TARGET_DIGITS,
    class_subset,
    markdown_table,
    prepare_digit_classes,
    subset_splits,
)
from selftrain.config import DataConfig
from selftrain.data import digits_images
from selftrain.truth import TRUTH_COLUMN, TRUTH_FILE, read_truth


def test_class_subset_keeps_only_the_asked_digits_renumbered():
    labels = np.array([7, 0, 5, 9, 5, 3, 8, 6])
    index, renumbered = class_subset(labels, (5, 6, 7, 8, 9))
    assert index.tolist() == [0, 2, 3, 4, 6, 7]
    assert renumbered.tolist() == [2, 0, 4, 0, 3, 1]


def test_source_split_has_no_pool():
    _, labels, _ = digits_images()
    _, renumbered = class_subset(labels, SOURCE_DIGITS)
    splits = subset_splits(renumbered, DataConfig(labeled_fraction=0.5), seed=0, all_labeled=True)
    assert set(splits) == {"labeled", "val", "test"}


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    config = DataConfig(labeled_fraction=0.02)
    source = prepare_digit_classes(root / "source", SOURCE_DIGITS, DataConfig(labeled_fraction=0.5), 1, all_labeled=True)
    target = prepare_digit_classes(root / "target", TARGET_DIGITS, config, 1)
    return source, target


def test_tasks_hold_only_their_digits_and_are_disjoint(tasks):
    source, target = tasks
    _, labels, _ = digits_images()
    for dataset, digits in ((source, SOURCE_DIGITS), (target, TARGET_DIGITS)):
        assert dataset.class_names == tuple(str(d) for d in digits)
        original = np.array([int(i.split("-")[1]) for i in dataset.manifest["item_id"]])
        # Every item is one of the task's digits, and every one of them is there.
        assert set(labels[original]) == set(digits)
        assert len(original) == int(np.isin(labels, digits).sum())
        # Known labels are the renumbered digit (index into class_names).
        known = dataset.manifest.dropna(subset=["label"])
        idx = np.array([int(i.split("-")[1]) for i in known["item_id"]])
        assert [dataset.class_names[k] for k in known["label"]] == [str(d) for d in labels[idx]]
    assert not set(source.manifest["item_id"]) & set(target.manifest["item_id"])


def test_target_pool_truth_is_renumbered_and_labels_are_two_percent(tasks):
    _, target = tasks
    _, labels, _ = digits_images()
    truth = read_truth(target.root / TRUTH_FILE)
    # The pool's hidden labels are renumbered like the known ones (refine's canary reads them).
    original = labels[[int(i.split("-")[1]) for i in truth["item_id"]]]
    assert [target.class_names[k] for k in truth[TRUTH_COLUMN]] == [str(d) for d in original]
    assert set(truth["item_id"]) == set(target.manifest.loc[target.manifest["split"] == "unlabeled", "item_id"])
    non_test = (target.manifest["split"] != "test").sum()
    assert (target.manifest["split"] == "labeled").sum() == round(0.02 * non_test)


def _record(arm, seed, teacher, gens, teacher_val=0.5):
    """gens: (val, test) per generation."""
    return {
        "arm": arm,
        "seed": seed,
        "labeled_rows": 14,
        "source_test": 0.99,
        "teacher": teacher,
        "teacher_val": teacher_val,
        "val_size": 72,
        "generations": [{"gen": k, "val_accuracy": v, "test_accuracy": t} for k, (v, t) in enumerate(gens, 1)],
    }


def test_table_gives_gen0_best_by_val_and_paired_difference():
    records = [
        # scratch: seed 0's best by val is gen 2 (0.90 test); seed 1's is the teacher (val 0.8).
        _record("scratch", 0, 0.80, [(0.6, 0.95), (0.7, 0.90)]),
        _record("scratch", 1, 0.70, [(0.5, 0.99), (0.6, 0.98)], teacher_val=0.8),
        # transfer: gen 1 best on both seeds.
        _record("transfer", 0, 0.90, [(0.9, 0.94), (0.8, 0.50)]),
        _record("transfer", 1, 0.86, [(0.9, 0.90), (0.8, 0.50)]),
    ]
    lines = markdown_table(records).splitlines()
    scratch = next(line for line in lines if line.startswith("| scratch |"))
    transfer = next(line for line in lines if line.startswith("| transfer |"))
    paired = next(line for line in lines if line.startswith("| transfer − scratch"))
    # gen 0: mean of 0.80, 0.70; best: mean of 0.90, 0.70.
    assert "| 75.00 ± 7.07 | 80.00 ± 14.14 |" in scratch
    assert "| 88.00 ± 2.83 | 92.00 ± 2.83 |" in transfer
    # Paired: gen 0 +10, +16; best +4, +20.
    assert "| 13.00 ± 4.24 | 12.00 ± 11.31 |" in paired
    assert "| 0 | scratch | (not used) | 80.00 | 95.00, 90.00 | 2 | 90.00 |" in lines
    assert "| 1 | transfer | 99.00 | 86.00 | 90.00, 50.00 | 1 | 90.00 |" in lines
