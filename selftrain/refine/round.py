"""Refine one round from its files: shared by the `refine` stage and the dry run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from selftrain.config import Params
from selftrain.data import load_dataset
from selftrain.errors import DataError
from selftrain.refine.config import parse_refine_config
from selftrain.refine.engine import RefineResult, refine
from selftrain.refine.inputs import RefineContext
from selftrain.truth import TRUTH_COLUMN, read_truth, with_truth


def refine_round(
    params: Params,
    manifest: str | Path,
    pseudo_labels: str | Path,
    previous: str | Path | None,
    gen: int,
    truth: str | Path | None = None,
) -> RefineResult:
    """Validate the rules, then refine round `gen`'s table; `previous` may be absent (round 1).

    `truth` is the canary truth file, when there is one: the engine hides it from the
    rules and the rules report judges them against it; the refined table never carries it.
    """
    dataset = load_dataset(manifest)
    # Validate the rules before reading any table: a bad rule fails in milliseconds.
    config = parse_refine_config(params.refine, dataset.class_names, dataset.metadata_columns)
    pseudo_labels = Path(pseudo_labels)
    if not pseudo_labels.exists():
        raise DataError(f"{pseudo_labels}: no pseudo-labels for round {gen}; run infer@{gen} first")
    table = with_truth(pd.read_parquet(pseudo_labels), read_truth(truth) if truth else None)
    prior = pd.read_parquet(previous) if previous and Path(previous).exists() else None
    context = RefineContext(class_names=dataset.class_names, generation=gen, previous=prior)
    result = refine(table, config, context)
    return dataclasses.replace(result, table=result.table.drop(columns=[TRUTH_COLUMN], errors="ignore"))
