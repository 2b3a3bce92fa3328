"""Rules that earn their place: each rule's precision on val, and refine.min_rule_precision's skips."""

from __future__ import annotations


import pandas as pd
import pytest

from refine_fixtures import BED, DRESSER, ISLAND, LAMP, config, make_table, refine_files, write_round_files
from selftrain.errors import ConfigError
from selftrain.refine import format_report
from selftrain.refine.val_check import check_rules_on_val
from selftrain.truth import TRUTH_COLUMN

ISLAND_TO_DRESSER = {
    "name": "island-to-dresser",
    "when": {"column": "pred", "op": "==", "value": "island"},
    "relabel": "dresser",
}
DROP_UNSURE = {"name": "drop-unsure", "when": {"column": "confidence", "op": "<", "value": 0.45}, "drop": True}


def val_table() -> pd.DataFrame:
    """Eight val rows. By hand: island-to-dresser relabels rows 0-2, and the truth is dresser
    for rows 0 and 1: 2/3 right. drop-unsure drops rows 4-7; the prediction was wrong on
    rows 4 (bed, truly lamp) and 6 (lamp, truly bed), right on 5 and 7: 2/4 right."""
    table = make_table(
        [ISLAND, ISLAND, ISLAND, BED, BED, BED, LAMP, LAMP], [0.5, 0.5, 0.5, 0.9, 0.4, 0.4, 0.4, 0.4]
    )
    table[TRUTH_COLUMN] = pd.array([DRESSER, DRESSER, ISLAND, BED, LAMP, BED, BED, LAMP], dtype="Int64")
    return table


def test_val_precision_equals_the_hand_count():
    check = check_rules_on_val(val_table(), config([ISLAND_TO_DRESSER, DROP_UNSURE]), 1)
    relabel = check.precision["island-to-dresser"]
    assert relabel["relabel"] == {"right": 2, "judged": 3, "precision": pytest.approx(2 / 3)}
    assert relabel["overall"]["precision"] == pytest.approx(2 / 3)
    drop = check.precision["drop-unsure"]
    assert drop["drop"] == {"right": 2, "judged": 4, "precision": 0.5}
    assert drop["overall"]["precision"] == 0.5
    assert check.rows == 8 and check.skipped == ()


def write_round(tmp_path, refine_section):
    """A prepared manifest, the pool's pseudo-labels and the teacher's val predictions."""
    pool = make_table([ISLAND, BED, LAMP], [0.5, 0.4, 0.9])
    pool["item_id"] = [f"pool{i}" for i in range(len(pool))]
    return write_round_files(tmp_path, pool, val_table(), refine_section)


def test_a_rule_below_min_rule_precision_is_skipped_and_reported(tmp_path):
    rules = [ISLAND_TO_DRESSER, DROP_UNSURE]
    params = write_round(tmp_path, {"rules": rules, "min_rule_precision": 0.6})
    result = refine_files(tmp_path, params)
    table, report = result.table, result.report

    # Applied on the pool: the relabel (2/3 >= 0.6). Skipped: the drop (2/4 < 0.6).
    assert table["label"].tolist() == [DRESSER, BED, LAMP]
    assert table["kept"].all() and not any("drop-unsure" in r for r in table["rules"])
    entries = {e["name"]: e for e in report["rules"]}
    skipped = entries["drop-unsure"]
    assert skipped["skipped"] is True and skipped["enabled"] is False and skipped["dropped"] == 0
    assert skipped["val_precision"]["overall"] == {"right": 2, "judged": 4, "precision": 0.5}
    assert "skipped: val precision 0.50 < refine.min_rule_precision 0.6" in skipped["note"]
    assert entries["island-to-dresser"]["skipped"] is False
    assert entries["island-to-dresser"]["val_precision"]["overall"]["precision"] == pytest.approx(2 / 3)
    assert [e["name"] for e in report["rules"][:2]] == ["island-to-dresser", "drop-unsure"]
    assert "drop-unsure" not in report["order"]
    assert report["val"] == {"rows": 8, "min_rule_precision": 0.6, "skipped": ["drop-unsure"]}
    text = format_report(report)
    assert "drop-unsure (skipped)" in text and "val precision (8 val rows)" in text
    assert "0.50 (2/4)" in text and "0.67 (2/3)" in text


def test_without_a_bound_every_rule_applies_and_reports_its_val_precision(tmp_path):
    params = write_round(tmp_path, {"rules": [ISLAND_TO_DRESSER, DROP_UNSURE]})
    report = refine_files(tmp_path, params).report
    entries = {e["name"]: e for e in report["rules"]}
    assert entries["drop-unsure"]["dropped"] == 1 and entries["drop-unsure"]["skipped"] is False
    assert entries["drop-unsure"]["val_precision"]["overall"]["precision"] == 0.5
    assert report["val"]["skipped"] == []


def test_min_rule_precision_without_val_predictions_is_refused(tmp_path):
    params = write_round(tmp_path, {"rules": [DROP_UNSURE], "min_rule_precision": 0.6})
    with pytest.raises(ConfigError, match=r"refine.min_rule_precision: set, but no val predictions"):
        refine_files(tmp_path, params, val=False)


def test_min_rule_precision_is_a_share():
    with pytest.raises(ConfigError, match=r"refine.min_rule_precision: must be in \[0.0, 1.0\], got 1.5"):
        config(min_rule_precision=1.5)
