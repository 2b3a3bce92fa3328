"""refine_label_sets: label-set conditions and actions on small multi-label frames, the issue's examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from selftrain.refine import RefineContext, parse_refine_config, refine_label_sets

NAMES = ("bed", "island", "dresser", "nightstand", "lamp")
EXTRA = ("source",)


def make_frame(label_sets, probs=None, **columns) -> pd.DataFrame:
    """One row per image: its predicted label set; probs 0.9 on the set's classes, 0.1 elsewhere."""
    if probs is None:
        probs = [[0.9 if name in labels else 0.1 for name in NAMES] for labels in label_sets]
    frame = pd.DataFrame(
        {
            "item_id": [f"img{i:02d}" for i in range(len(label_sets))],
            "labels": [list(s) for s in label_sets],
            "probs": probs,
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def run(frame, rules, generation=1):
    config = parse_refine_config({"rules": list(rules)}, NAMES, EXTRA, task="multilabel")
    return refine_label_sets(frame, config, RefineContext(NAMES, generation))


def after(result) -> list:
    return result.table["labels"].tolist()


def matched_rows(frame, condition) -> list[int]:
    """Rows a condition selects, seen through a weight action (which changes no label)."""
    result = run(frame, [{"name": "w", "when": condition, "weight": 2.0}])
    return np.flatnonzero(result.table["weight"].to_numpy() == 2.0).tolist()


SETS = [["bed", "island"], ["bed"], ["island", "lamp"], [], ["bed", "nightstand", "lamp"]]


# --- conditions ------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition, expected",
    [
        ({"labels_has_all": ["island", "bed"]}, [0]),
        ({"labels_has_all": ["bed"]}, [0, 1, 4]),
        ({"labels_has_all": "lamp"}, [2, 4]),  # one class may be written without a list
        ({"labels_has_any": ["island", "nightstand"]}, [0, 2, 4]),
        ({"labels_has_any": ["dresser"]}, []),
        ({"labels_count": {"op": "==", "value": 0}}, [3]),
        ({"labels_count": {"op": ">=", "value": 2}}, [0, 2, 4]),
        ({"labels_count": {"op": "<", "value": 2}}, [1, 3]),
        ({"labels_count": {"op": "!=", "value": 1}}, [0, 2, 3, 4]),
    ],
)
def test_label_set_conditions_select_their_rows(condition, expected):
    assert matched_rows(make_frame(SETS), condition) == expected


def test_score_of_reads_the_class_probability_in_the_set_or_not():
    probs = [
        [0.95, 0.6, 0.2, 0.1, 0.1],
        [0.8, 0.3, 0.45, 0.1, 0.1],  # dresser at 0.45: not in the set, still scored
        [0.1, 0.9, 0.05, 0.1, 0.7],
    ]
    frame = make_frame(SETS[:3], probs=probs)
    assert matched_rows(frame, {"score_of": {"label": "island", "op": "<", "value": 0.7}}) == [0, 1]
    assert matched_rows(frame, {"score_of": {"label": "dresser", "op": ">", "value": 0.4}}) == [1]
    assert matched_rows(frame, {"score_of": {"label": 0, "op": ">=", "value": 0.8}}) == [0, 1]


@pytest.mark.parametrize(
    "condition, expected",
    [
        # all: label set and a column condition together
        ({"all": [{"labels_has_any": ["bed"]}, {"column": "source", "op": "==", "value": "web"}]}, [0, 4]),
        # any: either a label-set condition or a column one
        ({"any": [{"labels_count": {"op": "==", "value": 0}}, {"column": "source", "op": "==", "value": "scan"}]}, [1, 2, 3]),
        ({"not": {"labels_has_any": ["bed", "lamp"]}}, [3]),
        (
            {"all": [{"labels_has_all": ["bed"]}, {"not": {"score_of": {"label": "bed", "op": "<", "value": 0.5}}}]},
            [0, 1, 4],
        ),
        ({"all": [{"labels_has_all": ["bed"]}, {"column": "weight", "op": "==", "value": 1.0}]}, [0, 1, 4]),
    ],
)
def test_label_set_conditions_combine_with_all_any_not_and_columns(condition, expected):
    frame = make_frame(SETS, source=["web", "scan", "scan", None, "web"])
    assert matched_rows(frame, condition) == expected


# --- actions ---------------------------------------------------------------------


def test_remove_label_takes_it_out_of_matching_sets_only():
    result = run(make_frame(SETS), [{"name": "no-lamp", "when": {"labels_has_any": ["island"]}, "remove_label": "lamp"}])
    assert after(result) == [["bed", "island"], ["bed"], ["island"], [], ["bed", "nightstand", "lamp"]]
    assert result.table["rules"].tolist() == [[], [], ["no-lamp"], [], []]
    (entry,) = result.report["rules"]
    assert (entry["matched"], entry["changed"], entry["sets_changed"]) == (2, 1, 1)
    assert entry["labels_removed"] == {"lamp": 1} and entry["labels_added"] == {}


def test_add_label_puts_it_in_matching_sets_that_lack_it():
    result = run(make_frame(SETS), [{"name": "lamp-by-bed", "when": {"labels_has_all": ["bed"]}, "add_label": "lamp"}])
    assert after(result) == [["bed", "island", "lamp"], ["bed", "lamp"], ["island", "lamp"], [], ["bed", "nightstand", "lamp"]]
    (entry,) = result.report["rules"]
    assert (entry["matched"], entry["changed"], entry["sets_changed"]) == (3, 2, 2)
    assert entry["labels_added"] == {"lamp": 2}


def test_remove_then_add_in_one_rule_swaps_a_label():
    rule = {"name": "swap", "when": {"labels_has_all": ["island", "lamp"]}, "remove_label": "island", "add_label": "dresser"}
    result = run(make_frame(SETS), [rule])
    assert after(result)[2] == ["dresser", "lamp"]
    assert result.report["rules"][0]["labels_added"] == {"dresser": 1}
    assert result.report["rules"][0]["labels_removed"] == {"island": 1}


def test_drop_and_weight_act_on_images():
    rules = [
        {"name": "drop-crowded", "when": {"labels_count": {"op": ">=", "value": 3}}, "drop": True},
        {"name": "halve-island", "when": {"labels_has_any": ["island"]}, "weight": 0.5},
    ]
    result = run(make_frame(SETS), rules)
    assert result.table["kept"].tolist() == [True, True, True, True, False]
    assert result.table["dropped_by"].tolist() == [None, None, None, None, "drop-crowded"]
    assert result.table["weight"].tolist() == [0.5, 1.0, 0.5, 1.0, 0.0]
    assert after(result)[4] is None  # a dropped image has no training labels
    assert result.report["kept"] == 4 and result.report["dropped"] == 1


def test_keep_exempts_images_from_a_later_drop():
    rules = [
        {"name": "sure-beds", "when": {"score_of": {"label": "bed", "op": ">", "value": 0.85}}, "keep": True},
        {"name": "drop-beds", "when": {"labels_has_any": ["bed"]}, "drop": True},
    ]
    result = run(make_frame(SETS), rules)
    assert result.table["kept"].all()
    assert result.report["rules"][1]["exempted"] == 3


def test_rules_run_in_order_and_see_what_the_earlier_ones_left():
    rules = [
        {"name": "add-lamp", "when": {"labels_has_all": ["bed"]}, "add_label": "lamp"},
        {"name": "lamp-no-island", "when": {"labels_has_all": ["lamp", "island"]}, "remove_label": "island"},
    ]
    result = run(make_frame(SETS), rules)
    assert after(result)[0] == ["bed", "lamp"]  # island removed only because lamp was added first
    assert result.table["rules"][0] == ["add-lamp", "lamp-no-island"]


def test_the_input_rows_and_index_are_kept_and_the_input_is_not_changed():
    frame = make_frame(SETS).set_axis([10, 11, 12, 13, 14])
    original = frame.copy(deep=True)
    result = run(frame, [{"name": "r", "when": {"labels_has_any": ["bed"]}, "remove_label": "bed"}])
    assert list(result.table.index) == [10, 11, 12, 13, 14]
    assert result.table["item_id"].tolist() == frame["item_id"].tolist()
    pd.testing.assert_frame_equal(frame, original)


# --- the issue's examples --------------------------------------------------------


ISLAND_IN_BEDROOM = [["island", "bed"], ["island", "dresser"], ["bed", "nightstand"]]


def test_no_island_in_bedroom_removes_the_island():
    rule = {"name": "no-island-in-bedroom", "when": {"labels_has_all": ["island", "bed"]}, "remove_label": "island"}
    result = run(make_frame(ISLAND_IN_BEDROOM), [rule])
    assert after(result) == [["bed"], ["island", "dresser"], ["bed", "nightstand"]]


def test_no_island_in_bedroom_drop_variant_drops_the_image():
    rule = {"name": "no-island-in-bedroom", "when": {"labels_has_all": ["island", "bed"]}, "drop": True}
    result = run(make_frame(ISLAND_IN_BEDROOM), [rule])
    assert result.table["kept"].tolist() == [False, True, True]
    assert result.table["dropped_by"][0] == "no-island-in-bedroom"


def test_bed_and_nightstand_without_dresser_adds_the_dresser():
    rule = {
        "name": "missed-dresser",
        "when": {"all": [{"labels_has_all": ["bed", "nightstand"]}, {"not": {"labels_has_any": ["dresser"]}}]},
        "add_label": "dresser",
    }
    frame = make_frame([["bed", "nightstand"], ["bed", "nightstand", "dresser"], ["bed"], ["nightstand", "lamp"]])
    result = run(frame, [rule])
    assert after(result) == [["bed", "dresser", "nightstand"], ["bed", "dresser", "nightstand"], ["bed"], ["nightstand", "lamp"]]
    assert result.report["rules"][0]["matched"] == 1  # the image that has its dresser is not matched


# --- an image whose set becomes empty ----------------------------------------------


def test_an_image_whose_set_becomes_empty_is_kept_with_an_empty_set():
    rule = {"name": "no-island", "when": {"labels_has_any": ["island"]}, "remove_label": "island"}
    result = run(make_frame([["island"], ["island", "bed"]]), [rule])
    assert result.table["kept"].tolist() == [True, True]
    assert after(result) == [[], ["bed"]]
    assert result.report["empty_sets"] == 1
    assert result.report["labels"] == {
        "before": {"bed": 1, "island": 2, "dresser": 0, "nightstand": 0, "lamp": 0},
        "after": {"bed": 1, "island": 0, "dresser": 0, "nightstand": 0, "lamp": 0},
    }


def test_a_later_rule_can_drop_images_left_empty():
    rules = [
        {"name": "no-island", "when": {"labels_has_any": ["island"]}, "remove_label": "island"},
        {"name": "drop-empty", "when": {"labels_count": {"op": "==", "value": 0}}, "drop": True},
    ]
    result = run(make_frame([["island"], ["island", "bed"], []]), rules)
    assert result.table["kept"].tolist() == [False, True, False]
    assert result.report["empty_sets"] == 0
