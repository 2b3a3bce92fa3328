"""Multi-label refinement's accounting and checks: label-change precision, the firewall, named errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from selftrain.errors import ConfigError, DataError
from selftrain.refine import RefineContext, format_label_report, parse_refine_config, refine, refine_label_sets
from selftrain.refine.label_sets import read_label_sets
from test_refine_label_rules import EXTRA, NAMES, make_frame, run

NO_ISLAND = {"name": "no-island-in-bedroom", "when": {"labels_has_all": ["island", "bed"]}, "remove_label": "island"}
MISSED_DRESSER = {
    "name": "missed-dresser",
    "when": {"all": [{"labels_has_all": ["bed", "nightstand"]}, {"not": {"labels_has_any": ["dresser"]}}]},
    "add_label": "dresser",
}
DROP_CROWDED = {"name": "drop-crowded", "when": {"labels_count": {"op": ">=", "value": 3}}, "drop": True}


def multilabel(rules, task="multilabel"):
    return parse_refine_config({"rules": list(rules)}, NAMES, EXTRA, task=task)


# --- accounting and precision against the canary truth ------------------------------


def canary_frame() -> pd.DataFrame:
    predicted = [
        ["island", "bed"],  # truth has no island: removing it is right
        ["island", "bed"],  # truth has the island: removing it is wrong
        ["bed", "nightstand"],  # truth has a dresser: adding it is right
        ["bed", "nightstand"],  # truth has none: adding it is wrong
        ["bed", "nightstand"],  # truth unknown: not judged
        ["bed", "island", "lamp"],  # dropped; its set is not the truth: right
        ["bed", "dresser", "lamp"],  # dropped; its set is not the truth: right
        ["bed", "island", "dresser"],  # dropped; its set is the truth: wrong
    ]
    truth = [
        ["bed"],
        ["island", "bed"],
        ["bed", "nightstand", "dresser"],
        ["bed", "nightstand"],
        None,
        ["bed", "island"],
        ["bed"],
        ["bed", "island", "dresser"],
    ]
    return make_frame(predicted, true_labels=truth)


def test_each_rule_counts_its_label_changes_and_their_precision():
    result = run(canary_frame(), [DROP_CROWDED, NO_ISLAND, MISSED_DRESSER])
    drop, remove, add = result.report["rules"]
    assert drop["dropped"] == 3 and drop["precision"]["drop"] == {"right": 2, "judged": 3, "precision": 2 / 3}
    assert drop["precision"]["labels"] == {"right": 0, "judged": 0, "precision": None}
    assert remove["labels_removed"] == {"island": 2} and remove["sets_changed"] == 2
    assert remove["precision"]["removed"] == {"right": 1, "judged": 2, "precision": 0.5}
    assert remove["precision"]["added"]["judged"] == 0
    assert add["labels_added"] == {"dresser": 3} and add["changed"] == 3
    assert add["precision"]["added"] == {"right": 1, "judged": 2, "precision": 0.5}  # the unknown row is not judged
    assert add["precision"]["labels"] == {"right": 1, "judged": 2, "precision": 0.5}


def test_exact_match_before_and_after_the_rules():
    result = run(canary_frame(), [DROP_CROWDED, NO_ISLAND, MISSED_DRESSER])
    assert result.report["accuracy"] == {
        "rows_with_truth": 7,
        "kept_with_truth": 4,
        "exact_match_before": 3 / 7,  # rows 1, 3 and 7
        "exact_match_after": 2 / 4,  # rows 0 and 2 (row 1 lost its true island, row 3 gained a dresser)
    }


def test_the_terminal_table_shows_each_rule_its_moves_and_precision():
    text = format_label_report(run(canary_frame(), [DROP_CROWDED, NO_ISLAND, MISSED_DRESSER]).report)
    lines = text.splitlines()
    assert lines[0] == "refine (multilabel), generation 1: 8 images, 5 kept, 3 dropped, 0 kept with no label"
    remove = next(line for line in lines if line.startswith("no-island-in-bedroom"))
    assert remove.split() == ["no-island-in-bedroom", "2", "2", "0", "0", "-", "island:", "2", "0.50", "(1/2)", "-"]
    drop = next(line for line in lines if line.startswith("drop-crowded"))
    assert drop.split()[-2:] == ["0.67", "(2/3)"]
    assert lines[-1] == "exact label sets (7 images with truth): 42.9% before -> 50.0% after"


def test_without_truth_there_is_no_precision():
    result = run(canary_frame().drop(columns=["true_labels"]), [NO_ISLAND])
    assert "precision" not in result.report["rules"][0] and "accuracy" not in result.report


def test_rules_never_see_the_truth_and_the_table_does_not_carry_it():
    with pytest.raises(ConfigError, match=r"when\.column: 'true_labels' is ground truth"):
        multilabel([{"name": "cheat", "when": {"column": "true_labels", "op": "not_null"}, "drop": True}])
    config = parse_refine_config({}, NAMES, ("true_labels", "source"), task="multilabel")
    assert config.extra_columns == ("source",)
    result = run(canary_frame(), [NO_ISLAND])
    assert "true_labels" not in result.table.columns


def test_a_parquet_round_trip_of_the_label_lists_reads_back(tmp_path):
    path = tmp_path / "pseudo_labels.parquet"
    canary_frame().to_parquet(path)
    result = run(pd.read_parquet(path), [NO_ISLAND])
    assert result.table["labels"].tolist()[:2] == [["bed"], ["bed"]]
    assert result.report["rules"][0]["precision"]["removed"]["right"] == 1


# --- task mismatches and bad rules: one named error each -----------------------------


@pytest.mark.parametrize(
    "rule, message",
    [
        (
            {"name": "no-island-in-bedroom", "when": {"labels_has_all": ["island", "bed"]}, "drop": True},
            r"refine\.rules\[0\] \(name 'no-island-in-bedroom'\)\.when\.labels_has_all: a label-set condition "
            r"needs task multilabel",
        ),
        (
            {"name": "n", "when": {"all": [{"column": "confidence", "op": "<", "value": 0.5},
                                           {"not": {"score_of": {"label": "bed", "op": "<", "value": 0.5}}}]},
             "drop": True},
            r"\(name 'n'\)\.when\.all\[1\]\.not\.score_of: a label-set condition needs task multilabel",
        ),
        (
            {"name": "a", "when": {"column": "confidence", "op": "<", "value": 0.5}, "add_label": "dresser"},
            r"\(name 'a'\)\.add_label: a label-set action needs task multilabel",
        ),
        (
            {"name": "r", "when": {"column": "confidence", "op": "<", "value": 0.5}, "remove_label": "bed"},
            r"\(name 'r'\)\.remove_label: a label-set action needs task multilabel",
        ),
    ],
)
def test_a_label_set_key_in_a_multiclass_run_names_the_rule_and_key(rule, message):
    with pytest.raises(ConfigError, match=message):
        multilabel([rule], task="multiclass")


WHEN = {"labels_has_any": ["bed"]}


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"name": "u", "when": {"labels_has_all": ["bed", "sofa"]}, "drop": True},
         r"\(name 'u'\)\.when\.labels_has_all\[1\]: unknown class 'sofa'"),
        ({"name": "u", "when": {"labels_has_any": []}, "drop": True}, r"\.when\.labels_has_any: expected a non-empty list"),
        ({"name": "u", "when": WHEN, "add_label": "sofa"}, r"\(name 'u'\)\.add_label: unknown class 'sofa'"),
        ({"name": "u", "when": WHEN, "remove_label": "sofa"}, r"\(name 'u'\)\.remove_label: unknown class 'sofa'"),
        ({"name": "u", "when": {"score_of": {"label": "sofa", "op": ">", "value": 0.5}}, "drop": True},
         r"\.when\.score_of\.label: unknown class 'sofa'"),
        ({"name": "u", "when": {"score_of": {"label": "bed", "op": ">", "value": 1.5}}, "drop": True},
         r"\.when\.score_of\.value: expected a probability in \[0, 1\]"),
        ({"name": "u", "when": {"score_of": {"label": "bed", "value": 0.5}}, "drop": True},
         r"\.when\.score_of\.op: required key is missing"),
        ({"name": "u", "when": {"score_of": {"label": "bed", "op": "~", "value": 0.5}}, "drop": True},
         r"\.when\.score_of\.op: unknown op '~'"),
        ({"name": "u", "when": {"labels_count": {"op": ">", "value": -1}}, "drop": True},
         r"\.when\.labels_count\.value: expected an integer >= 0"),
        ({"name": "u", "when": {"labels_count": {"op": ">", "value": 1, "class": "bed"}}, "drop": True},
         r"\.when\.labels_count\.class: unknown key"),
        ({"name": "u", "when": WHEN, "relabel": "bed"}, r"\(name 'u'\)\.relabel: acts on one class per row"),
        ({"name": "u", "when": WHEN, "threshold": 0.5}, r"\(name 'u'\)\.threshold: acts on one class per row"),
        ({"name": "u", "when": WHEN, "drop": True, "add_label": "bed"}, r"\(name 'u'\)\.add_label: drop cannot be combined"),
        ({"name": "u", "when": WHEN, "add_label": "bed", "remove_label": "bed"},
         r"\(name 'u'\)\.remove_label: the rule adds and removes the same label 'bed'"),
        ({"name": "u", "when": {"group_has": ["bed"]}, "drop": True}, r"\(name 'u'\)\.when\.group_has: group conditions"),
        ({"name": "u", "plugin": "tests.refine_fixtures:plugin_wide_to_lamp"}, r"\(name 'u'\)\.plugin: plug-in rules"),
    ],
)
def test_a_bad_multilabel_rule_names_the_rule_and_key(rule, message):
    with pytest.raises(ConfigError, match=message):
        multilabel([rule])


def test_an_unknown_task_is_refused():
    with pytest.raises(ConfigError, match=r"task: expected one of \['multiclass', 'multilabel'\], got 'multi'"):
        multilabel([], task="multi")


def test_each_engine_refuses_the_other_task():
    frame = make_frame([["bed"]])
    with pytest.raises(ConfigError, match="task multilabel"):
        refine(frame, multilabel([]), RefineContext(NAMES, 1))
    with pytest.raises(ConfigError, match="needs a config parsed with task multilabel"):
        refine_label_sets(frame, multilabel([], task="multiclass"), RefineContext(NAMES, 1))


# --- bad tables: one named error each ---------------------------------------------------


def test_a_table_without_labels_names_the_rule_and_key():
    frame = make_frame([["bed"]]).drop(columns=["labels"])
    with pytest.raises(DataError, match=r"\(name 'no-island-in-bedroom'\)\.when\.labels_has_all: .*no 'labels' column"):
        run(frame, [NO_ISLAND])
    action_only = {"name": "a", "when": {"column": "source", "op": "==", "value": "web"}, "add_label": "bed"}
    with pytest.raises(DataError, match=r"\(name 'a'\)\.add_label: .*no 'labels' column"):
        run(frame.assign(source="web"), [action_only])
    with pytest.raises(DataError, match=r"pseudo_labels: missing columns \['labels'\]"):
        run(frame, [])


def test_score_of_without_probs_or_with_bad_probs_is_named():
    rule = {"name": "s", "when": {"score_of": {"label": "bed", "op": ">", "value": 0.5}}, "drop": True}
    with pytest.raises(DataError, match=r"\(name 's'\)\.when\.score_of: reads 'probs'"):
        run(make_frame([["bed"]]).drop(columns=["probs"]), [rule])
    with pytest.raises(DataError, match=r"probs: row 1 \(item_id 'img01'\) is not 5 probabilities"):
        run(make_frame([["bed"], ["bed"]], probs=[[0.5] * 5, [0.5] * 4]), [rule])


@pytest.mark.parametrize(
    "cell, message",
    [
        (["bed", "sofa"], r"labels: row 1 \(item_id 'img01'\) has unknown class 'sofa'"),
        (None, r"labels: null at row 1 \(item_id 'img01'\)"),
        ("bed|island", r"labels: row 1 \(item_id 'img01'\) holds 'bed\|island'; expected a list of class names"),
    ],
)
def test_a_bad_labels_cell_names_the_row(cell, message):
    frame = make_frame([["bed"], ["bed"]])
    frame["labels"] = pd.Series([["bed"], cell], dtype=object)
    with pytest.raises(DataError, match=message):
        run(frame, [NO_ISLAND])


def test_an_unknown_true_label_names_the_row():
    frame = make_frame([["bed"]], true_labels=[["sofa"]])
    with pytest.raises(DataError, match=r"true_labels: row 0 \(item_id 'img00'\) has unknown class 'sofa'"):
        run(frame, [NO_ISLAND])


def test_read_label_sets_gives_the_matrix_and_the_known_rows():
    frame = pd.DataFrame({"item_id": ["a", "b", "c"], "t": [["lamp", "bed"], [], None]})
    sets, known = read_label_sets(frame, "t", NAMES, "truth", allow_null=True)
    assert sets.astype(int).tolist() == [[1, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    assert known.tolist() == [True, True, False]
    assert np.issubdtype(sets.dtype, np.bool_)
