"""The numbers behind the report's index and ``dvc plots``: per generation, per round, confidence histograms."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from selftrain.atomic import write_csv
from selftrain.inspection.rounds import available_rounds
from selftrain.inspection.tables import round_summary
from selftrain.paths import ProjectPaths
from selftrain.summary import generation_table

CONFIDENCE_BINS = 20
# A round's summary tables, as `selftrain.inspection.tables.summarize_round` returns them.
Summary = dict[str, pd.DataFrame]

GENERATION_PLOT_COLUMNS = ("generation", "test_accuracy", "macro_f1")
CONFIDENCE_PLOT_COLUMNS = ("round", "bin", "count")
ROUND_PLOT_COLUMNS = (
    "round", "rows", "kept", "teacher_accuracy", "kept_accuracy", "dropped_wrong_share", "flipped",
)


def write_plot_data(paths: ProjectPaths, out_dir: str | Path, generations: Sequence[int]) -> list[Path]:
    """Write CSVs for ``dvc plots`` on `generations` into `out_dir` and return their paths.

    - ``generations.csv``: generation, test_accuracy, macro_f1 (teacher = generation 0);
    - ``confidence.csv``: round, bin (left edge), count: confidence histograms;
    - ``rounds.csv``: per round rows, kept, teacher/kept accuracy, share of drops
      that were wrong, flips (accuracy columns empty without ground truth).
    """
    out_dir = Path(out_dir)
    rounds = report_rounds(paths, generations)
    summaries = {k: round_summary(paths, k) for k in rounds}
    written = []
    for name, frame in (
        ("generations.csv", generation_frame(paths, generations)),
        ("confidence.csv", confidence_histograms(paths, rounds)),
        ("rounds.csv", round_stats(summaries)),
    ):
        write_csv(frame, out_dir / name)
        written.append(out_dir / name)
    return written


def report_rounds(paths: ProjectPaths, generations: Sequence[int]) -> list[int]:
    """The rounds among `generations` that have a table on disk; rounds outside
    `generations` (left by an older, longer run) are not part of this report."""
    return [k for k in available_rounds(paths) if k in set(generations)]


def generation_frame(paths: ProjectPaths, generations: Sequence[int]) -> pd.DataFrame:
    """generation, test_accuracy, macro_f1 for every one of `generations` with metrics."""
    table = generation_table(paths, max(generations, default=0))
    return table[list(GENERATION_PLOT_COLUMNS)].reset_index(drop=True)


# The calibration table of the report's index, one row per multiclass generation.
CALIBRATION_COLUMNS = (
    "generation",
    "temperature",
    "test_ece_before",
    "test_ece_after",
    "ece_calibrated_model_reads",
    "test_nll_before",
    "test_nll_after",
    "test_size",
)


def calibration_by_generation(paths: ProjectPaths, generations: Sequence[int]) -> tuple[pd.DataFrame, dict]:
    """(CALIBRATION_COLUMNS table, {generation: (bins before, bins after)}) of the
    generations whose metrics/gen{k}.json hold a multiclass calibration with its
    reliability bins (`selftrain.calibration.reliability`); metrics written before the bins
    were recorded, and multilabel ones, are left out."""
    rows, bins = [], {}
    for gen in generations:
        path = paths.metrics(gen)
        calibration = json.loads(path.read_text()).get("calibration", {}) if path.exists() else {}
        if "reliability_after" not in calibration:
            continue
        rows.append(
            {
                "generation": gen,
                "temperature": calibration["temperature"],
                "test_ece_before": calibration["ece_before"],
                "test_ece_after": calibration["ece_after"],
                "ece_calibrated_model_reads": calibration.get("ece_floor"),
                "test_nll_before": calibration["nll_before"],
                "test_nll_after": calibration["nll_after"],
                "test_size": calibration.get("test_size"),
            }
        )
        bins[gen] = (calibration["reliability_before"], calibration["reliability_after"])
    return pd.DataFrame(rows, columns=list(CALIBRATION_COLUMNS)), bins


def confidence_histograms(paths: ProjectPaths, rounds: Iterable[int]) -> pd.DataFrame:
    """Long table round, bin, count of teacher confidence over [0, 1] in CONFIDENCE_BINS bins.

    ``bin`` is the bin's left edge; a round without a confidence column has no rows.
    """
    edges = np.linspace(0.0, 1.0, CONFIDENCE_BINS + 1)
    rows = []
    for k in rounds:
        confidence = _round_confidence(paths, k)
        if confidence is None:
            continue
        counts, _ = np.histogram(confidence, bins=edges)
        rows += [(k, round(float(edge), 4), int(n)) for edge, n in zip(edges[:-1], counts)]
    return pd.DataFrame(rows, columns=list(CONFIDENCE_PLOT_COLUMNS))


def _round_confidence(paths: ProjectPaths, k: int) -> np.ndarray | None:
    path = paths.pseudo_labels(k) if paths.pseudo_labels(k).exists() else paths.refined(k)
    # ParquetDataset reads the schema of a file and of a directory of parts alike.
    if "confidence" not in pq.ParquetDataset(path).schema.names:
        return None
    values = pd.read_parquet(path, columns=["confidence"])["confidence"].to_numpy(dtype=np.float64)
    return values[~np.isnan(values)]


def round_stats(summaries: dict[int, Summary]) -> pd.DataFrame:
    """One row per round (ROUND_PLOT_COLUMNS) from its summary tables; unknown numbers are null."""
    rows = []
    for k, summary in summaries.items():
        if "label_overview" in summary:
            rows.append(_label_round_stats(k, summary))
            continue
        overview = dict(zip(summary["overview"]["item"], summary["overview"]["value"]))
        canary = summary["canary_overall"].set_index("scope")
        flips = summary["flips"]
        rows.append(
            {
                "round": k,
                "rows": overview.get("rows"),
                "kept": overview.get("kept"),
                "teacher_accuracy": _lookup(canary, "teacher", "accuracy"),
                "kept_accuracy": _lookup(canary, "kept", "accuracy"),
                "dropped_wrong_share": _lookup(canary, "dropped", "wrong_share"),
                "flipped": int(flips["flipped"].iloc[0]) if len(flips) else None,
            }
        )
    frame = pd.DataFrame(rows, columns=list(ROUND_PLOT_COLUMNS))
    for column in ("round", "rows", "kept", "flipped"):
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    return frame


def _label_round_stats(k: int, summary: Summary) -> dict:
    """A multilabel round's row: accuracy is the exact-match ratio of label sets (canary)."""
    overview = dict(zip(summary["label_overview"]["item"], summary["label_overview"]["value"]))
    return {
        "round": k,
        "rows": overview.get("images"),
        "kept": overview.get("kept"),
        "teacher_accuracy": overview.get("exact_match_teacher"),
        "kept_accuracy": overview.get("exact_match_kept"),
        "dropped_wrong_share": None,
        "flipped": None,
    }


def _lookup(frame: pd.DataFrame, row: str, column: str) -> float | None:
    if row not in frame.index:
        return None
    value = frame.at[row, column]
    return None if pd.isna(value) else float(value)
