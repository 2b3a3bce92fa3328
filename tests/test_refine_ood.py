"""The built-in `ood` refine step: a threshold or a quantile of val's scores, and its report."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from conftest import REPO_ROOT
from refine_fixtures import BED, ISLAND, LAMP, config, make_table, refine_files, run, write_round_files
from selftrain.errors import ConfigError, DataError
from selftrain.refine.ood_config import parse_ood_config
from selftrain.truth import TRUTH_COLUMN


def scored_table(scores, **columns):
    table = make_table([BED, ISLAND, LAMP, BED][: len(scores)], **columns)
    table["ood_score"] = scores
    return table


def test_rows_above_the_threshold_are_dropped_by_ood():
    table = scored_table([0.1, 2.5, 0.7, 3.0], true_label=[BED, LAMP, LAMP, BED])
    result = run(table, ood={"enabled": True, "threshold": 1.0})
    out, report = result.table, result.report
    assert out["kept"].tolist() == [True, False, True, False]
    assert out["dropped_by"].tolist() == [None, "ood", None, "ood"]
    entry = next(e for e in report["rules"] if e["name"] == "ood")
    assert (entry["kind"], entry["enabled"], entry["dropped"]) == ("builtin", True, 2)
    assert entry["description"] == "ood_score > 1"
    # Canary precision like any drop: row 1's pred (island) was wrong, row 3's (bed) right.
    assert entry["precision"]["drop"] == {"right": 1, "judged": 2, "precision": 0.5}
    assert report["settings"]["ood"] == {"enabled": True, "threshold": 1.0, "quantile": None}
    assert report["order"][0] == "ood"  # first of the built-ins (no user rules here)
    json.dumps(report, allow_nan=False)


def test_off_by_default_and_still_reported():
    result = run(scored_table([0.1, 9.0]))
    assert result.table["kept"].all()
    entry = next(e for e in result.report["rules"] if e["name"] == "ood")
    assert entry["enabled"] is False and entry["dropped"] == 0
    assert parse_ood_config(yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["refine"]["ood"]).enabled is False


def test_a_keep_rule_exempts_rows_from_ood():
    keep = {"name": "trusted", "when": {"column": "pred", "op": "==", "value": "island"}, "keep": True}
    result = run(scored_table([5.0, 5.0]), [keep], ood={"enabled": True, "threshold": 1.0})
    assert result.table["kept"].tolist() == [False, True]
    entry = next(e for e in result.report["rules"] if e["name"] == "ood")
    assert (entry["dropped"], entry["exempted"]) == (1, 1)


def test_a_table_without_scores_is_refused_when_enabled():
    with pytest.raises(DataError, match="no 'ood_score' column"):
        run(make_table([BED, LAMP]), ood={"enabled": True, "threshold": 1.0})
    with pytest.raises(DataError, match="no ood_score at row 1"):
        run(scored_table([0.1, float("nan")]), ood={"enabled": True, "threshold": 1.0})


@pytest.mark.parametrize(
    "section, message",
    [
        ({"enabled": True}, r"refine.ood: enabled, but neither threshold nor quantile"),
        ({"threshold": 1.0, "quantile": 0.9}, r"refine.ood.quantile: give threshold or quantile, not both"),
        ({"quantile": 0.0}, r"refine.ood.quantile: must be in \(0, 1\]"),
        ({"threshold": "high"}, r"refine.ood.threshold: expected a finite number"),
        ({"enabled": "yes"}, r"refine.ood.enabled: expected true or false"),
        ({"score": "energy"}, r"refine.ood.score: unknown key"),
    ],
)
def test_bad_sections_name_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        config(ood=section)


def write_round(tmp_path, ood, val_scores):
    """A manifest, pool pseudo-labels with scores 0.2, 0.55, 0.9, and val predictions."""
    pool = scored_table([0.2, 0.55, 0.9])
    pool["item_id"] = [f"pool{i}" for i in range(len(pool))]
    val = scored_table(val_scores)
    val[TRUTH_COLUMN] = pd.array(val["pred"], dtype="Int64")
    return write_round_files(tmp_path, pool, val, {"ood": ood})


def test_the_quantile_of_val_scores_sets_the_threshold(tmp_path):
    # Val scores 0.1, 0.3, 0.5, 0.7: their median (numpy's linear quantile) is 0.4.
    params = write_round(tmp_path, {"enabled": True, "quantile": 0.5}, [0.1, 0.3, 0.5, 0.7])
    result = refine_files(tmp_path, params)
    assert result.table["kept"].tolist() == [True, False, False]
    entry = next(e for e in result.report["rules"] if e["name"] == "ood")
    assert entry["dropped"] == 2
    assert entry["description"] == "ood_score > 0.4; quantile 0.5 of 4 val scores"
    assert result.report["settings"]["ood"] == {"enabled": True, "threshold": pytest.approx(0.4), "quantile": 0.5}
    # The step ran on val too: the two val rows above 0.4 were dropped there.
    assert entry["val_precision"]["drop"]["judged"] == 2


def test_a_quantile_needs_the_val_predictions(tmp_path):
    params = write_round(tmp_path, {"enabled": True, "quantile": 0.9}, [0.1, 0.3])
    with pytest.raises(ConfigError, match="refine.ood.quantile: set, but no val predictions"):
        refine_files(tmp_path, params, val=False)
