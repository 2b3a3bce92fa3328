"""Prefect artifacts per round: what a person checks in the UI after a run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from selftrain.inspection.tables import round_summary
from selftrain.params_training import RESNET_S3
from selftrain.paths import ProjectPaths
from selftrain.report.markup import round_page_name


def class_mix_records(summary: dict[str, pd.DataFrame]) -> list[dict]:
    """Per class: teacher predictions, kept, dropped, and canary precision where truth is known;
    in a multilabel round per label: images with it in the teacher's sets and after the rules."""
    if "label_counts" in summary:
        counts = summary["label_counts"]
        return counts.astype(object).where(counts.notna(), None).to_dict(orient="records")
    mix = summary["class_counts"]
    canary = summary["canary_classes"]
    if not canary.empty and "precision" in canary.columns:
        mix = mix.merge(canary[["class", "precision"]], on="class", how="left")
    mix = mix.astype(object).where(mix.notna(), None)
    return mix.to_dict(orient="records")


def _model_size(metrics: dict) -> str:
    """resnet-s3 by its width and depth, another architecture by its name."""
    arch = metrics.get("architecture", RESNET_S3)
    if metrics.get("width") is None:
        return arch
    return f"{arch} width {metrics['width']}, depth {metrics['depth']}"


def round_markdown(paths: ProjectPaths, gen: int, summary: dict[str, pd.DataFrame]) -> str:
    metrics = json.loads(paths.metrics(gen).read_text()) if paths.metrics(gen).exists() else {}
    lines = [f"# Round {gen}", ""]
    if metrics.get("task") == "multilabel":
        lines += [
            f"- test mAP: **{_ratio(metrics.get('map'))}**, micro-F1 {_ratio(metrics.get('micro_f1'))}, "
            f"val mAP {_ratio(metrics.get('val_map'))}",
            f"- model: {_model_size(metrics)}, {metrics['num_parameters']:,} parameters",
        ]
    elif metrics:
        lines += [
            f"- test accuracy: **{metrics['accuracy']:.4f}**, macro-F1 {metrics['macro_f1']:.4f}",
            f"- model: {_model_size(metrics)}, {metrics['num_parameters']:,} parameters",
        ]
    lines.append(f"- report page: `{paths.reports_dir / round_page_name(gen)}` (after `selftrain report`)")
    for title, key in (
        ("Rule hits", "rules"), ("Canary", "canary_overall"),
        ("Overview", "label_overview"), ("Rule hits on label sets", "label_rules"),
    ):  # fmt: skip
        frame = summary.get(key)
        if frame is not None and not frame.empty:
            lines += ["", f"## {title}", "", frame.to_markdown(index=False)]
    return "\n".join(lines) + "\n"


def _ratio(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


@task(task_run_name="publish round {gen}")
def publish_round(project_dir: str, gen: int) -> None:
    """Attach round `gen`'s class mix table and metrics summary to the flow run."""
    paths = ProjectPaths(Path(project_dir))
    summary = round_summary(paths, gen)
    create_table_artifact(
        table=class_mix_records(summary),
        key=f"round-{gen}-class-mix",
        description=f"Round {gen}: pseudo-labels per class (teacher, kept, dropped, canary precision)",
    )
    create_markdown_artifact(
        markdown=round_markdown(paths, gen, summary),
        key=f"round-{gen}-summary",
        description=f"Round {gen}: metrics, rule hits, canary",
    )
