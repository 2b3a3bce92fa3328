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
    """Per class: teacher predictions, kept, dropped, and canary precision where truth is known."""
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
    if metrics:
        lines += [
            f"- test accuracy: **{metrics['accuracy']:.4f}**, macro-F1 {metrics['macro_f1']:.4f}",
            f"- model: {_model_size(metrics)}, {metrics['num_parameters']:,} parameters",
        ]
    lines.append(f"- report page: `{paths.reports_dir / round_page_name(gen)}` (after `selftrain report`)")
    for title, key in (("Rule hits", "rules"), ("Canary", "canary_overall")):
        frame = summary.get(key)
        if frame is not None and not frame.empty:
            lines += ["", f"## {title}", "", frame.to_markdown(index=False)]
    return "\n".join(lines) + "\n"


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
