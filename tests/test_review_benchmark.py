"""The review benchmark's pure parts (benchmarks/review.py): the simulated reviewer and the queues it answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.review import answer, markdown_table, pick_queue, random_queue
from refine_fixtures import BED, DRESSER, ISLAND, LAMP, NAMES, make_table
from selftrain.refine.corrections import read_corrections
from selftrain.review.apply import apply_queue
from selftrain.review.names import QUEUE_COLUMNS
from selftrain.truth import TRUTH_COLUMN


def pool(n: int) -> pd.DataFrame:
    preds = [i % len(NAMES) for i in range(n)]
    return make_table(preds, [0.3 + 0.6 * i / n for i in range(n)])


def truth_of(table: pd.DataFrame, labels: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"item_id": table["item_id"], TRUTH_COLUMN: pd.array(labels, dtype="Int64")})


def test_reviewer_answers_each_queued_item_with_its_truth_and_counts_the_changes():
    table = make_table([BED, ISLAND, DRESSER, LAMP], [0.4, 0.5, 0.6, 0.7])
    truth = truth_of(table, [BED, LAMP, DRESSER, ISLAND])  # item001 and item003 are wrong
    queue = pick_queue("uncertainty", table, NAMES, 3, None, frozenset(), np.random.default_rng(0))
    answered, changed = answer(queue, truth, NAMES)
    assert answered["item_id"].tolist() == ["item000", "item001", "item002"]
    assert answered["correct_label"].tolist() == ["bed", "lamp", "dresser"]
    assert changed == 1  # item000 and item002 are confirmed; item003 was not queued


def test_reviewer_refuses_an_item_without_truth():
    table = make_table([BED, ISLAND])
    queue = pick_queue("uncertainty", table, NAMES, 2, None, frozenset(), np.random.default_rng(0))
    with pytest.raises(KeyError, match="item001"):
        answer(queue, truth_of(table.iloc[:1], [BED]), NAMES)


def test_answers_go_through_review_apply_into_the_corrections_refine_reads(tmp_path):
    table = pool(12)
    truth = truth_of(table, [LAMP] * 12)
    manifest = pd.DataFrame({"item_id": table["item_id"], "split": "unlabeled"})
    corrections = tmp_path / "corrections.csv"
    settled: frozenset[str] = frozenset()
    for round_ in (1, 2):
        queue = pick_queue("uncertainty", table, NAMES, 4, None, settled, np.random.default_rng(round_))
        answered, _ = answer(queue, truth, NAMES)
        path = tmp_path / f"queue{round_}.csv"
        answered.to_csv(path, index=False)
        assert apply_queue(path, corrections, manifest, NAMES) == 4
        settled = frozenset(read_corrections(corrections, NAMES).labels)
    # Two rounds of the 4 least confident, the second skipping the first's: items 0..7, all lamp.
    assert read_corrections(corrections, NAMES).labels == {f"item{i:03d}": LAMP for i in range(8)}


def test_random_pick_is_seeded_sized_and_skips_corrected_items():
    table = pool(40)
    settled = frozenset(f"item{i:03d}" for i in range(0, 40, 2))
    picks = [set(random_queue(table, NAMES, 10, np.random.default_rng(seed), settled)["item_id"]) for seed in (7, 7, 8)]
    assert picks[0] == picks[1]
    assert picks[0] != picks[2]
    for picked in picks:
        assert len(picked) == 10 and not picked & settled and picked <= set(table["item_id"])
    # Fewer candidates than asked for: every one left, once.
    assert len(random_queue(table, NAMES, 30, np.random.default_rng(0), settled)) == 20


def test_random_queue_has_the_product_queue_columns_and_says_why():
    queue = random_queue(pool(5), NAMES, 3, np.random.default_rng(0), frozenset())
    assert list(queue.columns) == list(QUEUE_COLUMNS)
    assert (queue["why"] == "drawn at random").all()


def test_no_review_and_flips_in_round_one_queue_nothing():
    table = pool(6)
    rng = np.random.default_rng(0)
    assert pick_queue("none", table, NAMES, 3, None, frozenset(), rng).empty
    assert pick_queue("flips", table, NAMES, 3, None, frozenset(), rng).empty
    previous = pd.Series([LAMP] * 6, index=table["item_id"])
    flipped = pick_queue("flips", table, NAMES, 3, previous, frozenset(), rng)
    assert set(flipped["item_id"]) <= {f"item{i:03d}" for i in range(6) if i % len(NAMES) != LAMP}
    assert len(flipped) == 3
    answered, changed = answer(pick_queue("none", table, NAMES, 3, None, frozenset(), rng), truth_of(table, [0] * 6), NAMES)
    assert answered.empty and changed == 0


def record(arm: str, seed: int, vals: list[float], tests: list[float], changed: list[int]) -> dict:
    generations = [
        {"gen": k, "val_accuracy": v, "test_accuracy": t, "reviewed": 20 * bool(c), "changed": c}
        for k, (v, t, c) in enumerate(zip(vals, tests, changed), start=1)
    ]
    return {"arm": arm, "seed": seed, "teacher": 0.5, "teacher_val": 0.1, "val_size": 1000, "generations": generations}


def test_table_gives_the_best_generation_by_val_and_its_gain_over_no_review_on_the_same_seed():
    records = [
        record("none", 0, [0.6, 0.7], [0.60, 0.70], [0, 0]),
        record("none", 1, [0.8, 0.7], [0.80, 0.90], [0, 0]),
        # Seed 0: gen 1 wins on val (its test is lower than gen 2's); seed 1: gen 2.
        record("uncertainty", 0, [0.9, 0.7], [0.74, 0.95], [15, 5]),
        record("uncertainty", 1, [0.8, 0.9], [0.70, 0.86], [12, 0]),
    ]
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in markdown_table(records).splitlines()[2:]}
    assert rows["none"][2:4] == ["75.00 ± 7.07", "-"]  # 0.70 (gen 2) and 0.80 (gen 1)
    assert rows["uncertainty"][2] == "80.00 ± 8.49"  # 0.74 and 0.86
    assert rows["uncertainty"][3] == "5.00 ± 1.41"  # 0.74 - 0.70 and 0.86 - 0.80
    assert rows["uncertainty"][4:] == ["30.0", "16.0 |"]  # reviewed (40, 20), changed (20, 12): means per seed
