"""A multi-label round end to end: the refine stage on contract files, the built-ins, balancing
by the rarest label, and the targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from selftrain.errors import ConfigError, DataError
from selftrain.refine import RefineContext, format_label_report, parse_refine_config
from selftrain.refine.label_builtins import EMPTY_GROUP, rarest_label_groups
from selftrain.refine.label_round import refine_multilabel
from stages import refine as refine_stage

NAMES = ("bed", "island", "dresser", "nightstand", "lamp")
REPO_ROOT = Path(__file__).resolve().parents[1]
QUIET = {"threshold": 0.5, "balance": {"enabled": False}}
NO_ISLAND = {"name": "no-island-in-bedroom", "when": {"labels_has_all": ["island", "bed"]}, "remove_label": "island"}
MISSED_DRESSER = {
    "name": "missed-dresser",
    "when": {"all": [{"labels_has_all": ["bed", "nightstand"]}, {"not": {"labels_has_any": ["dresser"]}}]},
    "add_label": "dresser",
}


def pseudo_table(label_sets, margins=None, **columns) -> pd.DataFrame:
    """The infer stage's multi-label table (contract 3): probs 0.9 on the set's classes, 0.2
    elsewhere (threshold 0.5), so min_margin is 0.3 unless given."""
    n = len(label_sets)
    probs = [[0.9 if name in labels else 0.2 for name in NAMES] for labels in label_sets]
    frame = pd.DataFrame(
        {
            "item_id": [f"img{i:02d}" for i in range(n)],
            "path": [f"images/img{i:02d}.png" for i in range(n)],
            "teacher_gen": [0] * n,
            "probs": probs,
            "pred_labels": [list(s) for s in label_sets],
            "scores": [[0.9] * len(s) for s in label_sets],
            "min_margin": [0.3] * n if margins is None else margins,
            "mean_binary_entropy": [0.4] * n,
            "ood_score": [0.0] * n,
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def run(table, rules=(), previous=None, **section):
    config = parse_refine_config({**QUIET, **section, "rules": list(rules)}, NAMES, task="multilabel")
    return refine_multilabel(table, config, RefineContext(NAMES, 1, previous))


# --- the stage on contract files ------------------------------------------------------


# The teacher's val predictions: by hand, no-island-in-bedroom removes the island from
# val0 and val1, and neither truly has one (2/2 right); missed-dresser adds a dresser to
# val2, whose true set has none (0/1 right).
VAL_PREDICTED = [["bed", "island"], ["bed", "island"], ["bed", "nightstand"], ["lamp"]]
VAL_TRUTH = [["bed"], ["bed", "lamp"], ["bed", "nightstand"], ["lamp"]]


def val_predictions(predicted=VAL_PREDICTED, truth=VAL_TRUTH) -> pd.DataFrame:
    """infer's val table in a multi-label round: the pool's columns, `true_label` null and
    the true sets as lists in `true_labels`."""
    table = pseudo_table(predicted)
    table["item_id"] = [f"val{i}" for i in range(len(table))]
    table["true_label"] = pd.array([None] * len(table), dtype="Int64")
    table["true_labels"] = pd.Series([list(t) for t in truth], dtype=object)
    return table


def write_round(folder: Path, table: pd.DataFrame, truth: list, refine_section: dict) -> Path:
    """A prepared manifest (contract 1), the truth file, round 1's pseudo-label part, the
    teacher's val predictions and a multilabel params.yaml in `folder`; returns the params path."""
    prepared = folder / "prepared"
    prepared.mkdir()
    n = len(table)
    pd.DataFrame(
        {
            "item_id": list(table["item_id"]) + ["lab0"],
            "path": list(table["path"]) + ["images/lab0.png"],
            "split": ["unlabeled"] * n + ["labeled"],
            "label": pd.array([None] * (n + 1), dtype="Int64"),
            "labels": [None] * n + ["bed|lamp"],
        }
    ).to_parquet(prepared / "manifest.parquet")
    (prepared / "classes.json").write_text(json.dumps(list(NAMES)))
    pd.DataFrame(
        {
            "item_id": list(table["item_id"]),
            "true_label": pd.array([None] * n, dtype="Int64"),
            "true_labels": [None if t is None else "|".join(t) for t in truth],
        }
    ).to_parquet(prepared / "truth.parquet")
    parts = folder / "pseudo_labels"
    parts.mkdir()
    table.to_parquet(parts / "part-00000.parquet")
    val_predictions().to_parquet(folder / "val_predictions.parquet")
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["task"] = "multilabel"
    raw["data"]["source"] = "digits-mosaic"
    raw["refine"] = {**QUIET, "soft": False, **refine_section}
    (folder / "params.yaml").write_text(yaml.safe_dump(raw))
    return folder / "params.yaml"


def run_stage(folder: Path, params: Path, corrections: str = "missing_corrections.csv") -> tuple[pd.DataFrame, dict]:
    refine_stage.main([
        "--params", str(params), "--gen", "1",
        "--manifest", str(folder / "prepared/manifest.parquet"),
        "--pseudo-labels", str(folder / "pseudo_labels"),
        "--previous", str(folder / "missing_round_0"),
        "--truth", str(folder / "prepared/truth.parquet"),
        "--val-predictions", str(folder / "val_predictions.parquet"),
        "--corrections", str(folder / corrections),
        "--out", str(folder / "refined.parquet"), "--report", str(folder / "rules_report.json"),
    ])
    return pd.read_parquet(folder / "refined.parquet"), json.loads((folder / "rules_report.json").read_text())


def test_the_stage_applies_the_issue_rules_and_writes_contract_4(tmp_path):
    predicted = [["bed", "island"], ["bed", "island"], ["bed", "nightstand"], ["bed", "nightstand"], ["lamp"]]
    truth = [["bed"], ["bed", "island"], ["bed", "dresser", "nightstand"], None, ["lamp"]]
    params = write_round(tmp_path, pseudo_table(predicted), truth, {"rules": [NO_ISLAND, MISSED_DRESSER]})

    refined, report = run_stage(tmp_path, params)

    assert [list(v) for v in refined["labels"]] == [
        ["bed"], ["bed"], ["bed", "dresser", "nightstand"], ["bed", "dresser", "nightstand"], ["lamp"],
    ]
    assert [list(v) for v in refined["pred_labels"]] == predicted  # the teacher's sets stay beside
    for column in ("target", "weight", "kept", "copies", "rules", "dropped_by"):
        assert column in refined.columns
    assert not {"pred", "confidence", "margin", "entropy", "true_labels", "true_label"} & set(refined.columns)
    # Hard targets (refine.soft false): the 0/1 of the final sets.
    assert [list(t) for t in refined["target"]][2] == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert list(refined["rules"][0]) == ["no-island-in-bedroom"]
    rules = {entry["name"]: entry for entry in report["rules"]}
    assert report["task"] == "multilabel"
    assert rules["no-island-in-bedroom"]["precision"]["removed"] == {"right": 1, "judged": 2, "precision": 0.5}
    # The third image's truth has the dresser; the fourth's is unknown: not judged.
    assert rules["missed-dresser"]["precision"]["added"] == {"right": 1, "judged": 1, "precision": 1.0}
    assert rules["threshold"]["enabled"] is False and "infer" in rules["threshold"]["note"]
    # A corrections path (here a missing file: none) gives the report its entry, first.
    assert report["order"][:3] == ["corrections", "no-island-in-bedroom", "missed-dresser"]


def test_each_rule_reports_its_val_precision_and_one_below_the_bound_is_skipped(tmp_path, capsys):
    predicted = [["bed", "island"], ["bed", "nightstand"]]
    params = write_round(
        tmp_path, pseudo_table(predicted), [None, None],
        {"rules": [NO_ISLAND, MISSED_DRESSER], "min_rule_precision": 0.5},
    )

    refined, report = run_stage(tmp_path, params)

    # Applied on the pool: the island rule (val 2/2). Skipped: missed-dresser (val 0/1).
    assert [list(v) for v in refined["labels"]] == [["bed"], ["bed", "nightstand"]]
    rules = {entry["name"]: entry for entry in report["rules"]}
    assert rules["no-island-in-bedroom"]["val_precision"]["overall"] == {"right": 2, "judged": 2, "precision": 1.0}
    skipped = rules["missed-dresser"]
    assert skipped["skipped"] is True and skipped["enabled"] is False and skipped["sets_changed"] == 0
    assert skipped["val_precision"]["added"] == {"right": 0, "judged": 1, "precision": 0.0}
    assert "skipped: val precision 0.00 < refine.min_rule_precision 0.5" in skipped["note"]
    assert "missed-dresser" not in report["order"]
    assert report["val"] == {"rows": 4, "min_rule_precision": 0.5, "skipped": ["missed-dresser"]}
    assert "rule 'missed-dresser' skipped" in capsys.readouterr().out
    text = format_label_report(report)
    assert "missed-dresser (skipped)" in text and "val precision (4 val images)" in text
    assert "1.00 (2/2)" in text and "0.00 (0/1)" in text


def test_without_a_bound_label_rules_apply_and_report_their_val_precision(tmp_path):
    params = write_round(tmp_path, pseudo_table([["bed", "nightstand"]]), [None], {"rules": [MISSED_DRESSER]})
    refined, report = run_stage(tmp_path, params)
    assert [list(v) for v in refined["labels"]] == [["bed", "dresser", "nightstand"]]
    # The corrections entry (here none) stays first, the user rules follow in params order.
    assert [entry["name"] for entry in report["rules"][:2]] == ["corrections", "missed-dresser"]
    entry = report["rules"][1]
    assert entry["skipped"] is False
    assert entry["val_precision"]["overall"]["precision"] == 0.0
    assert report["val"]["skipped"] == []


def test_the_stage_refuses_a_multiclass_rule_in_a_multilabel_run(tmp_path):
    relabel = {"name": "island-to-dresser", "when": {"labels_has_all": ["island"]}, "relabel": "dresser"}
    params = write_round(tmp_path, pseudo_table([["island"]]), [None], {"rules": [relabel]})
    with pytest.raises(ConfigError, match=r"refine.rules\[0\] \(name 'island-to-dresser'\).relabel"):
        run_stage(tmp_path, params)


def test_the_stage_names_a_multiclass_pseudo_label_table(tmp_path):
    table = pseudo_table([["bed"]]).drop(columns=["pred_labels"])
    params = write_round(tmp_path, table, [None], {})
    with pytest.raises(DataError, match=r"missing columns \['pred_labels'\]"):
        run_stage(tmp_path, params)


def test_corrections_set_whole_sets_or_drop_and_no_rule_touches_them(tmp_path):
    predicted = [["bed", "island"], ["bed", "island"], ["lamp"], ["lamp"]]
    params = write_round(tmp_path, pseudo_table(predicted), [["bed", "island"], None, [], None],
                         {"soft": True, "rules": [NO_ISLAND]})
    (tmp_path / "corrections.csv").write_text(
        "item_id,label,note\nimg00,bed|island,really both\nimg02,,nothing there\nimg03,drop,blurred\nzzz,bed,gone\n"
    )
    refined, report = run_stage(tmp_path, params, corrections="corrections.csv")
    labels = [None if v is None else list(v) for v in refined["labels"]]
    # img00 keeps the island a person confirmed; img01's is removed by the rule.
    assert labels == [["bed", "island"], ["bed"], [], None]
    assert refined["dropped_by"].fillna("").tolist() == ["", "", "", "corrections"]
    assert list(refined["rules"][0]) == ["corrections"]
    # A corrected set trains on 0/1 even with soft targets; the rule's image on soft + hard.
    assert list(refined["target"][0]) == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert list(refined["target"][2]) == [0.0] * 5
    entry = report["rules"][0]
    assert entry["name"] == "corrections" and entry["matched"] == 3 and entry["labels_removed"] == {"lamp": 1}
    assert entry["precision"]["removed"] == {"right": 1, "judged": 1, "precision": 1.0}
    assert "1 name no pool image" in entry["note"]


def test_a_corrections_line_naming_an_unknown_class_is_named(tmp_path):
    params = write_round(tmp_path, pseudo_table([["bed"]]), [None], {})
    (tmp_path / "corrections.csv").write_text("item_id,label,note\nimg00,bed|sofa,\n")
    with pytest.raises(DataError, match=r"corrections.csv: line 2: label 'sofa' is not a class"):
        run_stage(tmp_path, params, corrections="corrections.csv")


# --- built-ins ------------------------------------------------------------------------


def test_margin_and_entropy_limits_drop_uncertain_images():
    table = pseudo_table([["bed"], ["lamp"], ["island"]], margins=[0.3, 0.05, 0.3])
    table["mean_binary_entropy"] = [0.1, 0.1, 0.6]
    result = run(table, min_margin=0.1, max_entropy=0.5)
    assert result.table["kept"].tolist() == [True, False, False]
    assert result.table["dropped_by"].tolist() == [None, "margin", "entropy"]


def test_ood_drops_images_above_the_threshold():
    table = pseudo_table([["bed"], ["lamp"]], ood_score=[0.1, 5.0])
    result = run(table, ood={"enabled": True, "threshold": 1.0})
    assert result.table["dropped_by"].tolist() == [None, "ood"]


def test_agreement_drops_images_whose_set_changed_since_the_previous_round():
    table = pseudo_table([["bed"], ["bed", "lamp"], ["island"]])
    previous = pseudo_table([["bed"], ["bed"]])  # img02 is new this round: not judged
    result = run(table, previous=previous, agreement=True)
    assert result.table["kept"].tolist() == [True, False, True]


def test_soft_targets_are_the_sigmoid_probs_except_classes_a_rule_changed():
    result = run(pseudo_table([["bed", "island"]]), [NO_ISLAND], soft=True)
    # bed 0.9 stays soft; island was removed by the rule: a hard 0; the rest stay 0.2.
    assert result.table["target"][0] == pytest.approx([0.9, 0.0, 0.2, 0.2, 0.2])
    sharp = run(pseudo_table([["bed"]]), soft=True, temperature=0.5).table["target"][0]
    assert sharp[0] == pytest.approx(0.81 / (0.81 + 0.01))  # sigmoid(logit(0.9) / 0.5)


def test_a_dropped_image_has_no_labels_and_no_target():
    rule = {"name": "drop-lamps", "when": {"labels_has_any": ["lamp"]}, "drop": True}
    result = run(pseudo_table([["lamp"], ["bed"]]), [rule])
    assert result.table["labels"][0] is None and result.table["target"][0] is None
    assert result.table["copies"].tolist() == [0, 1]


# --- balancing by the rarest label ------------------------------------------------------


def test_each_image_joins_the_group_of_its_rarest_label_and_empty_sets_their_own():
    sets = np.array([
        [1, 0, 0, 0, 1],  # bed (4 carriers) and lamp (2): lamp
        [1, 0, 0, 0, 0],  # bed
        [1, 0, 0, 0, 0],
        [1, 0, 0, 0, 1],  # lamp
        [0, 0, 0, 0, 0],  # empty: group C
        [0, 1, 0, 0, 0],  # dropped: -1
    ], dtype=bool)
    kept = np.array([True] * 5 + [False])
    assert rarest_label_groups(sets, kept).tolist() == [4, 0, 0, 4, 5, -1]


def test_balance_caps_and_duplicates_by_the_rarest_label():
    # Rarest-label groups: bed 4 images (img00-03), lamp 1 (img04, also carries bed), empty 2.
    sets = [["bed"], ["bed"], ["bed"], ["bed"], ["bed", "lamp"], [], []]
    margins = [0.3, 0.4, 0.1, 0.2, 0.3, 0.3, 0.3]
    result = run(pseudo_table(sets, margins=margins), balance={"enabled": True})
    # per_class = median of the group sizes (4, 1, 2) = 2.
    entry = {e["name"]: e for e in result.report["rules"]}["balance"]
    assert entry["per_class"] == 2
    assert entry["groups"] == {"bed": 4, "lamp": 1, EMPTY_GROUP: 2}
    # bed keeps its two most certain images (margins 0.4 and 0.3); lamp's image is doubled.
    assert result.table["kept"].tolist() == [True, True, False, False, True, True, True]
    assert result.table["copies"].tolist() == [1, 1, 0, 0, 2, 1, 1]
    assert result.report["training_rows"] == 6
    assert result.report["labels"]["after_copies"]["lamp"] == 2
    lines = format_label_report(result.report).splitlines()
    assert any(line.startswith("threshold (off)") for line in lines)
    balance = next(line for line in lines if line.startswith("balance"))
    assert balance.split()[1:4] == ["3", "3", "2"] and balance.split()[-1] == "1"  # matched, changed, dropped; copies+


def test_balance_per_class_from_params_and_keep_exemption():
    sets = [["bed"], ["bed"], ["bed"]]
    keep = {"name": "trust-last", "when": {"column": "item_id", "op": "==", "value": "img02"}, "keep": True}
    table = pseudo_table(sets, margins=[0.3, 0.2, 0.1])
    result = run(table, [keep], balance={"enabled": True, "per_class": 1})
    assert result.table["kept"].tolist() == [False, False, True]  # the exempt image is kept first
