"""The per-generation summary table, read back from the round artifacts."""

from __future__ import annotations

import json

import pandas as pd

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


def kept_label_accuracy(refined: pd.DataFrame) -> float | None:
    """Canary: share of kept pseudo-labels that match the truth, where truth is known
    (`refined` with the truth joined, see `selftrain.truth.with_truth`)."""
    if TRUTH_COLUMN not in refined.columns:
        return None
    kept = refined[refined["kept"] & refined[TRUTH_COLUMN].notna()]
    if kept.empty:
        return None
    return float((kept["label"].astype("int64") == kept[TRUTH_COLUMN].astype("int64")).mean())


def generation_table(paths: ProjectPaths, generations: int) -> pd.DataFrame:
    """One row per generation 0..generations that has metrics on disk."""
    rows = []
    truth = read_truth(paths.truth)
    for gen in range(generations + 1):
        metrics_path = paths.metrics(gen)
        if not metrics_path.exists():
            continue
        metrics = json.loads(metrics_path.read_text())
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


def table_records(table: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts, missing values as None (not NaN), for flow results and JSON."""
    return [
        {key: (None if pd.isna(value) else value) for key, value in row.items()}
        for row in table.astype(object).to_dict(orient="records")
    ]


def format_table(table: pd.DataFrame) -> str:
    """Fixed-width text for logs and terminals."""
    shown = table.copy()
    for column in ("pseudo_accuracy", "test_accuracy", "macro_f1", "val_accuracy"):
        shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else f"{v:.4f}")
    for column in ("width", "depth", "pseudo_kept", "val_size"):
        shown[column] = shown[column].map(lambda v: "-" if pd.isna(v) else str(int(v)))
    return shown.to_string(index=False)
