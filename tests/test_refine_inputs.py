"""refine()'s input checks: bad tables, rule columns and the context, each a clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from refine_fixtures import BED, ISLAND, config, drop_when, make_table, run
from selftrain.errors import ConfigError, DataError
from selftrain.refine import RefineContext, refine


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t: t.drop(columns=["probs"]), r"missing columns \['probs'\]"),
        (lambda t: t.assign(label=1), "already has refinement columns"),
        (lambda t: t.assign(item_id="same"), "duplicate 'same'"),
        (lambda t: t.assign(pred=[0, 7]), r"pseudo_labels.pred: 7 at row 1 \(item_id 'item001'\)"),
        (lambda t: t.assign(pred=[0.5, 1.0]), "pseudo_labels.pred"),
        (lambda t: t.assign(confidence=[np.nan, 0.5]), "pseudo_labels.confidence: null at row 0"),
        (lambda t: t.assign(probs=[[0.5, 0.5], [0.25] * 4]), r"row 0 .* has shape \(2,\), expected \(4,\)"),
        (lambda t: t.assign(probs=[[-1.0, 1, 0.5, 0.5], [0.25] * 4]), "not a probability vector"),
        (lambda t: t.assign(probs=[None, [0.25] * 4]), "pseudo_labels.probs"),
    ],
)
def test_bad_tables_raise_data_error_naming_the_column(mutate, message):
    with pytest.raises(DataError, match=message):
        run(mutate(make_table([BED, ISLAND])))


def test_missing_or_mistyped_rule_columns_raise_data_error_before_any_work():
    table = make_table([BED, ISLAND], source=["a", "b"])
    with pytest.raises(DataError, match=r"refine\.rules\[0\] \(name 'r'\): column 'width' is not in"):
        run(table, [drop_when({"column": "width", "op": ">", "value": 3})])
    with pytest.raises(DataError, match=r"refine\.rules\[0\] \(name 'r'\)\.when: column 'source' has dtype .* cannot be compared with 3"):
        run(table, [drop_when({"column": "source", "op": "==", "value": 3})])
    with pytest.raises(DataError, match="refine.group_by: column 'group_id' is not in"):
        run(table, group_by="group_id")


def test_context_must_match_the_config():
    with pytest.raises(ConfigError, match="class_names"):
        refine(make_table([BED]), config(), RefineContext(("a", "b"), 1, None))
    with pytest.raises(DataError, match=r"context.previous: missing columns \['pred'\]"):
        run(make_table([BED]), previous=pd.DataFrame({"item_id": ["item000"], "confidence": [0.5]}))
