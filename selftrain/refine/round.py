"""Refine one round from its files: shared by the `refine` stage and the dry run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from selftrain.config import Params
from selftrain.data import load_dataset
from selftrain.errors import ConfigError, DataError
from selftrain.label_columns import TRUE_LABELS_COLUMN, split_labels
from selftrain.refine.config import parse_refine_config
from selftrain.refine.corrections import read_corrections
from selftrain.refine.engine import RefineResult, refine
from selftrain.refine.inputs import RefineContext
from selftrain.refine.label_corrections import read_label_corrections
from selftrain.refine.label_round import refine_multilabel
from selftrain.refine.label_rules import LABELS_COLUMN, LabelSetResult
from selftrain.refine.ood_config import resolve_threshold
from selftrain.refine.report import add_val_check
from selftrain.refine.val_check import check_rules_on_val
from selftrain.truth import TRUTH_COLUMN, read_truth, with_truth


def refine_round(
    params: Params,
    manifest: str | Path,
    pseudo_labels: str | Path,
    previous: str | Path | None,
    gen: int,
    truth: str | Path | None = None,
    val_predictions: str | Path | None = None,
    corrections: str | Path | None = None,
) -> RefineResult | LabelSetResult:
    """Validate the rules, then refine round `gen`'s table; `previous` may be absent (round 1).

    `truth` is the canary truth file, when there is one: the engine hides it from the
    rules and the rules report judges them against it; the refined table never carries it.
    `val_predictions` is the teacher's table over the val split (with its truth): the
    rules run on it first, the report gives each one's val precision, and a rule below
    ``refine.min_rule_precision`` is skipped (`selftrain.refine.val_check`).
    `corrections` is the people's corrections file (`selftrain.refine.corrections`), applied
    first; a path to a missing file means none, but still gives the report its entry.

    With ``task: multilabel`` the round's label sets are refined instead
    (`selftrain.refine.label_round`): the truth file's and val's truth are the true label
    sets (``true_labels``), a rule's val precision is label-level, and the corrections
    file's ``label`` is each image's whole set (`selftrain.refine.label_corrections`).
    """
    dataset = load_dataset(manifest)
    multilabel = params.task == "multilabel"
    refine_table = refine_multilabel if multilabel else refine
    read_people = read_label_corrections if multilabel else read_corrections
    # Validate the rules before reading any table: a bad rule fails in milliseconds. The
    # manifest's own `labels` (a multi-label run's sets) is not a column rules may read.
    columns = [c for c in dataset.metadata_columns if c != LABELS_COLUMN]
    config = parse_refine_config(params.refine, dataset.class_names, columns, task=params.task)
    if config.min_rule_precision is not None and val_predictions is None:
        raise ConfigError(
            f"refine.min_rule_precision: set, but no val predictions to measure the rules on "
            f"(infer@{gen} writes data/gen{gen}/val_predictions.parquet)"
        )
    pseudo_labels = Path(pseudo_labels)
    if not pseudo_labels.exists():
        raise DataError(f"{pseudo_labels}: no pseudo-labels for round {gen}; run infer@{gen} first")
    people = None if corrections is None else read_people(corrections, dataset.class_names)
    table = with_truth(pd.read_parquet(pseudo_labels), read_truth(truth) if truth else None)
    if multilabel:
        table = true_label_lists(table)
    prior = pd.read_parquet(previous) if previous and Path(previous).exists() else None
    context = RefineContext(class_names=dataset.class_names, generation=gen, previous=prior)
    val_truth = TRUE_LABELS_COLUMN if multilabel else TRUTH_COLUMN
    val = None if val_predictions is None else _read_val_predictions(val_predictions, gen, val_truth)
    config = dataclasses.replace(config, ood=resolve_threshold(config.ood, val, gen))
    if val is None:
        result = refine_table(table, config, context, people)
    else:
        check = check_rules_on_val(val, config, gen)
        result = refine_table(table, dataclasses.replace(config, rules=check.applied), context, people)
        result = dataclasses.replace(result, report=add_val_check(result.report, config, check))
    return dataclasses.replace(result, table=result.table.drop(columns=[TRUTH_COLUMN], errors="ignore"))


def true_label_lists(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with its joined ``true_labels`` (the truth file's "a|b" text) as lists of class
    names, None where unknown: the form the label report reads."""
    if TRUE_LABELS_COLUMN not in table.columns:
        return table
    table = table.copy()
    table[TRUE_LABELS_COLUMN] = pd.Series(
        [split_labels(cell) for cell in table[TRUE_LABELS_COLUMN].tolist()], index=table.index, dtype=object
    )
    return table


def _read_val_predictions(path: str | Path, gen: int, truth_column: str) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no val predictions for round {gen}; run infer@{gen} first")
    val = pd.read_parquet(path)
    if truth_column not in val.columns:
        raise DataError(f"{path}: missing column {truth_column!r} (the val truth); has {list(val.columns)}")
    return val
