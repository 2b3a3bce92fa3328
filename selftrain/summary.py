"""The per-generation summary table, read back from the round artifacts.

A multilabel run (its metrics files say ``task: multilabel``) adds columns
(`MULTILABEL_SUMMARY_COLUMNS`): test mAP, micro-F1, val mAP, and the canary share of kept
pseudo-label sets that equal the true sets; its accuracy columns are null.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from selftrain.label_columns import LABELS_COLUMN, TRUE_LABELS_COLUMN, split_labels
from selftrain.params_training import RESNET_S3
from selftrain.paths import ProjectPaths
from selftrain.truth import TRUTH_COLUMN, read_truth, with_truth

SUMMARY_COLUMNS = (
    "generation",
    "architecture",
    "width",
    "depth",
    "parameters",
    "pseudo_kept",
    "pseudo_accuracy",
    "test_accuracy",
    "macro_f1",
    # Decided on val (the gate, select_best, the temperature): its accuracy with its size beside it.
    "val_accuracy",
    "val_size",
)
# A multilabel run's table: the same columns (its accuracies null, so every reader of the
# multiclass table still finds its columns) plus the label-set ones. Its gate and
# select_best decide on val_map.
MULTILABEL_ONLY_COLUMNS = ("pseudo_exact_match", "test_map", "micro_f1", "val_map")
MULTILABEL_SUMMARY_COLUMNS = (*SUMMARY_COLUMNS, *MULTILABEL_ONLY_COLUMNS)
# Null in a multilabel run: format_table leaves them out there.
ACCURACY_COLUMNS = ("pseudo_accuracy", "test_accuracy", "val_accuracy")


def kept_label_accuracy(refined: pd.DataFrame) -> float | None:
    """Canary: share of kept pseudo-labels that match the truth, where truth is known
    (`refined` with the truth joined, see `selftrain.truth.with_truth`)."""
    if TRUTH_COLUMN not in refined.columns:
        return None
    kept = refined[refined["kept"] & refined[TRUTH_COLUMN].notna()]
    if kept.empty:
        return None
    return float((kept["label"].astype("int64") == kept[TRUTH_COLUMN].astype("int64")).mean())


def kept_label_set_exact_match(refined: pd.DataFrame) -> float | None:
    """Canary of a multilabel round: share of kept pseudo-label sets equal to the true set,
    where it is known (`refined` with the truth file's ``true_labels`` joined, `with_truth`)."""
    if TRUE_LABELS_COLUMN not in refined.columns:
        return None
    kept = refined[refined["kept"].to_numpy(dtype=bool) & refined[TRUE_LABELS_COLUMN].notna().to_numpy()]
    if kept.empty:
        return None
    same = [set(a) == set(split_labels(b)) for a, b in zip(kept[LABELS_COLUMN], kept[TRUE_LABELS_COLUMN])]
    return float(np.mean(same))


def generation_table(paths: ProjectPaths, generations: int) -> pd.DataFrame:
    """One row per generation 0..generations that has metrics on disk; a multilabel run's
    table has `MULTILABEL_SUMMARY_COLUMNS`."""
    metrics_by_gen = {
        gen: json.loads(paths.metrics(gen).read_text())
        for gen in range(generations + 1)
        if paths.metrics(gen).exists()
    }
    if any(m.get("task") == "multilabel" for m in metrics_by_gen.values()):
        return _label_set_table(paths, metrics_by_gen)
    rows = []
    truth = read_truth(paths.truth)
    for gen, metrics in metrics_by_gen.items():
        row = {
            "generation": gen,
            # Metrics written before architectures were named are resnet-s3's.
            "architecture": metrics.get("architecture", RESNET_S3),
            "width": metrics["width"],
            "depth": metrics["depth"],
            "parameters": metrics["num_parameters"],
            "pseudo_kept": None,
            "pseudo_accuracy": None,
            "test_accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "val_accuracy": (metrics.get("val") or {}).get("accuracy"),
            "val_size": metrics.get("val_size"),
        }
        if gen > 0 and paths.refined(gen).exists():
            refined = pd.read_parquet(paths.refined(gen))
            row["pseudo_kept"] = int(refined["kept"].sum())
            row["pseudo_accuracy"] = kept_label_accuracy(with_truth(refined, truth))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _label_set_table(paths: ProjectPaths, metrics_by_gen: dict[int, dict]) -> pd.DataFrame:
    truth = read_truth(paths.truth)
    rows = []
    for gen, metrics in metrics_by_gen.items():
        row = {
            "generation": gen,
            "architecture": metrics.get("architecture", RESNET_S3),
            "width": metrics["width"],
            "depth": metrics["depth"],
            "parameters": metrics["num_parameters"],
            "pseudo_kept": None,
            "pseudo_accuracy": None,
            "pseudo_exact_match": None,
            "test_accuracy": None,
            "test_map": metrics.get("map"),
            "micro_f1": metrics.get("micro_f1"),
            "macro_f1": metrics.get("macro_f1"),
            "val_accuracy": None,
            "val_map": metrics.get("val_map"),
            "val_size": metrics.get("val_size"),
        }
        if gen > 0 and paths.refined(gen).exists():
            refined = pd.read_parquet(paths.refined(gen))
            row["pseudo_kept"] = int(refined["kept"].sum())
            row["pseudo_exact_match"] = kept_label_set_exact_match(with_truth(refined, truth))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(MULTILABEL_SUMMARY_COLUMNS))


def table_records(table: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts, missing values as None (not NaN), for flow results and JSON."""
    return [
        {key: (None if pd.isna(value) else value) for key, value in row.items()}
        for row in table.astype(object).to_dict(orient="records")
    ]


def format_table(table: pd.DataFrame) -> str:
    """Fixed-width text for logs and terminals."""
    shown = table.copy()
    if "test_map" in shown.columns:  # a multilabel run: its accuracies are all null
        shown = shown.drop(columns=[c for c in ACCURACY_COLUMNS if shown[c].isna().all()])
    ratios = ("pseudo_accuracy", "pseudo_exact_match", "test_accuracy", "test_map", "micro_f1", "macro_f1",
              "val_accuracy", "val_map")
    for column in (c for c in ratios if c in shown.columns):
        shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:.4f}")
    for column in (c for c in ("width", "depth", "pseudo_kept", "val_size") if c in shown.columns):
        shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else str(int(v)))
    return shown.to_string(index=False)
