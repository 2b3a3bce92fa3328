"""Shared pieces of the refine tests: a tiny pseudo-label table and one-line runs.

`make_table` builds the infer stage's table for four classes; `run` refines it with
no built-in filtering unless asked (`QUIET`); `full_run` exercises every kind of
rule at once on `rich_table`. `plugin_wide_to_lamp` is found by dotted path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from selftrain.config import Params, params_from_dict
from selftrain.refine import RefineContext, parse_refine_config, refine, refine_round
from selftrain.truth import TRUTH_COLUMN

NAMES = ("bed", "island", "dresser", "lamp")
BED, ISLAND, DRESSER, LAMP = range(4)
EXTRA = ("group_id", "source", "width")
RESULT_COLUMNS = ["label", "target", "weight", "kept", "copies", "rules", "dropped_by"]
# No built-in filtering unless a test asks for it, so each test sees only its rule.
QUIET = {"threshold": None, "balance": {"enabled": False}}


def make_table(preds, confidences=None, **columns) -> pd.DataFrame:
    """Pseudo-labels with probs that put `confidence` on `pred` and share the rest evenly."""
    n = len(preds)
    confidences = [0.9] * n if confidences is None else confidences
    probs = []
    for pred, conf in zip(preds, confidences):
        row = np.full(len(NAMES), (1.0 - conf) / (len(NAMES) - 1))
        row[pred] = conf
        probs.append(row.tolist())
    p = np.array(probs).reshape(n, len(NAMES))
    top2 = np.sort(p, axis=1)[:, -2:]
    frame = pd.DataFrame(
        {
            "item_id": [f"item{i:03d}" for i in range(n)],
            "path": [f"img/{i}.png" for i in range(n)],
            "teacher_gen": [0] * n,
            "pred": preds,
            "confidence": confidences,
            "margin": (top2[:, 1] - top2[:, 0]).tolist(),
            "entropy": (-(p * np.log(p, where=p > 0, out=np.zeros_like(p))).sum(axis=1)).tolist(),
            "probs": probs,
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def config(rules=(), **section):
    raw = {**QUIET, **section, "rules": list(rules)}
    return parse_refine_config(raw, NAMES, EXTRA)


def run(table, rules=(), previous=None, **section):
    return refine(table, config(rules, **section), RefineContext(NAMES, 1, previous))


def drop_when(condition, name="r"):
    return {"name": name, "when": condition, "drop": True}


def dropped(result) -> list[int]:
    return np.flatnonzero(~result.table["kept"].to_numpy()).tolist()


ISLAND_TO_DRESSER = {
    "name": "island-to-dresser",
    "when": {"all": [{"column": "pred", "op": "==", "value": "island"}, {"group_has": ["bed"]}]},
    "relabel": "dresser",
}


# --- plug-ins are found by dotted path: `plug` names a function's own module --------


def plugin_wide_to_lamp(frame: pd.DataFrame, context: RefineContext) -> pd.DataFrame:
    assert "true_label" not in frame.columns
    assert context.previous is None or "true_label" not in context.previous.columns
    wide = frame["width"] > 100
    frame.loc[wide, "label"] = context.class_names.index("lamp")
    frame.loc[frame["width"] < 10, "kept"] = False
    frame.loc[frame["width"] == 50, "weight"] = 3.0
    return frame


def plug(name, function):
    return {"name": name, "plugin": f"{function.__module__}:{function.__name__}"}


# --- every kind of rule at once ---------------------------------------------------

FULL_RULES = [
    ISLAND_TO_DRESSER,
    {"name": "trust", "when": {"column": "source", "op": "==", "value": "gold"}, "keep": True, "weight": 2},
    drop_when({"column": "confidence", "op": "<", "value": 0.4}, name="very-low"),
    plug("wide-lamps", plugin_wide_to_lamp),
]


def rich_table(n=30, seed=1):
    rng = np.random.default_rng(seed)
    return make_table(
        rng.integers(0, 4, n).tolist(),
        rng.uniform(0.3, 1.0, n).round(3).tolist(),
        group_id=rng.choice(["r1", "r2", "r3", "r4"], n).tolist(),
        source=rng.choice(["gold", "web"], n).tolist(),
        width=rng.integers(8, 200, n).tolist(),
    )


def full_run(table, previous=None):
    section = {"threshold": 0.6, "agreement": True, "balance": {"enabled": True}, "group_by": "group_id"}
    return run(table, FULL_RULES, previous=previous, **section)


def write_round_files(folder: Path, pool: pd.DataFrame, val: pd.DataFrame, refine_section: dict) -> Params:
    """A prepared manifest (pool rows unlabeled, val rows with their truth as labels),
    the pool's pseudo-labels and the teacher's val predictions in `folder`; returns the
    shipped params with `refine_section` over QUIET."""
    manifest = pd.DataFrame(
        {
            "item_id": list(pool["item_id"]) + list(val["item_id"]),
            "path": list(pool["path"]) + list(val["path"]),
            "split": ["unlabeled"] * len(pool) + ["val"] * len(val),
            "label": pd.array([None] * len(pool) + list(val[TRUTH_COLUMN]), dtype="Int64"),
        }
    )
    manifest.to_parquet(folder / "manifest.parquet")
    (folder / "classes.json").write_text(json.dumps(list(NAMES)))
    pool.to_parquet(folder / "pseudo_labels.parquet")
    val.to_parquet(folder / "val_predictions.parquet")
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    raw["refine"] = {**QUIET, **refine_section}
    return params_from_dict(raw)


def refine_files(folder: Path, params: Params, val: bool = True):
    """refine_round over `write_round_files`' files (round 1, no previous round)."""
    return refine_round(
        params,
        folder / "manifest.parquet",
        folder / "pseudo_labels.parquet",
        None,
        1,
        val_predictions=folder / "val_predictions.parquet" if val else None,
    )
