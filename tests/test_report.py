"""The HTML report and the DVC plot data, on synthetic artifacts (see report_fixtures)."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from report_fixtures import (  # noqa: F401 (built is a pytest fixture)
    CLASS_NAMES,
    DROP_RULE,
    RELABEL_RULE,
    Options,
    Page,
    build_project,
    built,
    section_of,
)
from selftrain.inspection.tables import round_summary
from selftrain.paths import ProjectPaths
from selftrain.report.pages import INDEX_SECTIONS, ROUND_SECTIONS, write_report
from selftrain.report.plot_data import (
    CONFIDENCE_PLOT_COLUMNS,
    GENERATION_PLOT_COLUMNS,
    ROUND_PLOT_COLUMNS,
    write_plot_data,
)
from selftrain.report.tiles import TILE_CAP


def _pages(report_dir: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(report_dir.glob("*.html"))}


# ---------------------------------------------------------------------------
# The full report


def test_index_and_one_page_per_round(built):
    paths, index = built
    assert index == paths.root / "reports" / "index.html"
    assert sorted(_pages(index.parent)) == ["index.html", "round1.html", "round2.html", "round3.html"]


def test_index_links_to_every_round(built):
    _, index = built
    page = Page(index.read_text())
    for k in (1, 2, 3):
        assert f"round{k}.html" in page.links
    for name in ("round1.html", "round3.html"):
        assert "index.html" in Page((index.parent / name).read_text()).links


def test_every_section_present_with_stable_ids(built):
    _, index = built
    pages = _pages(index.parent)
    assert set(INDEX_SECTIONS) <= set(Page(pages["index.html"]).ids)
    for k in (1, 2, 3):
        ids = Page(pages[f"round{k}.html"]).ids
        assert set(ROUND_SECTIONS) <= set(ids), set(ROUND_SECTIONS) - set(ids)
        assert len(ids) == len(set(ids)), "duplicate ids"
        assert {f"kept-class-{i}" for i in range(len(CLASS_NAMES))} <= set(ids)
        assert f"dropped-by-{DROP_RULE}" in ids and f"relabelled-by-{RELABEL_RULE}" in ids


def test_pages_are_self_contained_and_well_formed(built):
    _, index = built
    for name, text in _pages(index.parent).items():
        page = Page(text)  # raises on a tag that does not close
        assert page.doctype.lower() == "doctype html", name
        assert page.images, name
        assert all(img["src"].startswith("data:image/png;base64,") for img in page.images), name
        assert all(img.get("alt") for img in page.images), name
        assert "http://" not in text and "https://" not in text, name
        assert "<script" not in text and "<link" not in text and "<iframe" not in text, name
        assert all(not href or re.fullmatch(r"(index|round\d+)\.html", href) for href in page.links), name


def test_round_page_has_the_figures(built):
    _, index = built
    ids = Page((index.parent / "round2.html").read_text()).ids
    for figure in ("class-mix-figure", "confidence-figure", "flip-figure", "confusion-figure"):
        assert figure in ids
    index_ids = Page(index.read_text()).ids
    expected = {"generation-curve", "generation-table", "round-table", "confidence-overview-figure"}
    assert expected <= set(index_ids)


def test_figures_are_decodable_pngs(built):
    _, index = built
    for img in Page(index.read_text()).images:
        png = Image.open(io.BytesIO(base64.b64decode(img["src"].split(",", 1)[1])))
        assert png.format == "PNG" and png.width > 100 and png.height > 100


def test_first_round_says_why_it_has_no_flips(built):
    _, index = built
    text = (index.parent / "round1.html").read_text()
    assert "no previous round" in section_of(text, "flips")
    assert 'id="flip-figure"' in (index.parent / "round2.html").read_text()


def test_index_tables_include_the_teacher_generation(built):
    paths, index = built
    text = index.read_text()
    table = re.search(r'<table class="data" id="generation-table">(.*?)</table>', text, re.S).group(1)
    rows = re.findall(r"<tr><td class=\"num\">(\d+)</td>", table)
    assert rows == ["0", "1", "2", "3"]
    assert "0.7500" in table  # test accuracy of generation 3
    kept = int(pd.read_parquet(paths.refined(1))["kept"].sum())
    assert f'<td class="num">{kept}</td>' in table  # a count, not "{kept}.0000"


def test_val_accuracy_has_its_val_size_beside_it(built):
    _, index = built
    table = re.search(r'<table class="data" id="generation-table">(.*?)</table>', index.read_text(), re.S).group(1)
    head = re.findall(r"<th>(.*?)</th>", table)
    assert head[head.index("val_accuracy") + 1] == "val_size"
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(<td.*?)</tr>", table)]
    sizes = [row[head.index("val_size")] for row in cells]
    assert sizes == ["10", "11", "12", "13"]  # write_metrics: val_size 10 + generation


def test_calibration_section_has_the_reliability_figure_and_table(built):
    _, index = built
    section = section_of(index.read_text(), "calibration")
    assert 'id="reliability-figure"' in section
    table = re.search(r'<table class="data" id="calibration-table">(.*?)</table>', section, re.S).group(1)
    head = re.findall(r"<th>(.*?)</th>", table)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(<td.*?)</tr>", table)]
    assert [row[0] for row in cells] == ["0", "1", "2", "3"]
    # write_metrics: temperature 1.5 + 0.1 * generation; the calibrated model's reading beside the ECEs.
    assert [row[head.index("temperature")] for row in cells] == ["1.5000", "1.6000", "1.7000", "1.8000"]
    assert head.index("ece_calibrated_model_reads") == head.index("test_ece_after") + 1
    assert {row[head.index("ece_calibrated_model_reads")] for row in cells} == {"0.0200"}


def test_calibration_section_says_why_it_is_empty_without_bins(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=1, items=20))
    for gen in range(2):
        metrics = json.loads(paths.metrics(gen).read_text())
        del metrics["calibration"]["reliability_after"]  # as metrics written before the bins
        paths.metrics(gen).write_text(json.dumps(metrics))
    index = write_report(paths, tmp_path / "report", range(2))
    assert _unavailable(index.read_text(), "calibration")


def test_rewriting_replaces_the_directory_atomically(built, tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=1, items=20))
    out = paths.root / "reports"
    out.mkdir()
    (out / "stale.html").write_text("old")
    write_report(paths, out, range(2))
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "round1.html"]
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".reports")] == []


# ---------------------------------------------------------------------------
# Degrading gracefully


def _unavailable(text: str, section_id: str) -> bool:
    return 'class="unavailable"' in section_of(text, section_id)


def test_report_without_truth(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=2, items=20, truth=False))
    index = write_report(paths, paths.root / "reports", range(3))
    text = (index.parent / "round2.html").read_text()
    Page(text)
    assert _unavailable(text, "confusion") and _unavailable(text, "canary")
    assert not _unavailable(text, "kept-images") and 'class="tile unjudged"' in text
    assert "wrong" not in re.findall(r'class="tile (\w+)"', text)


def test_report_without_rules_report_or_rule_columns(tmp_path):
    options = Options(rounds=2, items=20, rules_report=False, refined_without=("rules", "dropped_by"))
    paths = build_project(tmp_path / "p", options)
    index = write_report(paths, paths.root / "reports", range(3))
    text = (index.parent / "round2.html").read_text()
    page = Page(text)
    assert _unavailable(text, "rules") and _unavailable(text, "rule-relabels")
    # Dropped rows still shown, in one grid, since no column says which rule dropped them.
    assert "dropped-by-rule-unknown" in page.ids
    assert page.tiles_by_grid["dropped-by-rule-unknown"] == min(
        TILE_CAP, int((~pd.read_parquet(paths.refined(2))["kept"]).sum())
    )


def test_report_without_refined_tables(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=2, items=20, refined=False))
    index = write_report(paths, paths.root / "reports", range(3))
    text = (index.parent / "round1.html").read_text()
    page = Page(text)
    assert any("no refined table" in note for note in page.unavailable)
    assert _unavailable(text, "rule-drops")
    assert sum(page.tiles_by_grid.get(f"kept-class-{i}", 0) for i in range(10)) == 20


def test_report_of_an_empty_project(tmp_path):
    paths = ProjectPaths(tmp_path / "empty")
    index = write_report(paths, paths.root / "reports", [0])
    text = index.read_text()
    assert set(INDEX_SECTIONS) <= set(Page(text).ids)
    assert _unavailable(text, "generations") and _unavailable(text, "rounds")


# ---------------------------------------------------------------------------
# Plot data for `dvc plots`


def test_plot_data_files_and_columns(built):
    paths, _ = built
    written = write_plot_data(paths, paths.plots_dir, range(4))
    assert [p.name for p in written] == ["generations.csv", "confidence.csv", "rounds.csv"]
    generations = pd.read_csv(paths.plots_dir / "generations.csv")
    assert tuple(generations.columns) == GENERATION_PLOT_COLUMNS
    assert generations["generation"].tolist() == [0, 1, 2, 3]
    assert generations["test_accuracy"].tolist() == pytest.approx([0.6, 0.65, 0.7, 0.75])
    confidence = pd.read_csv(paths.plots_dir / "confidence.csv")
    assert tuple(confidence.columns) == CONFIDENCE_PLOT_COLUMNS
    assert confidence.groupby("round")["count"].sum().tolist() == [300, 300, 300]
    table = pd.read_parquet(paths.pseudo_labels(2))
    in_bin = ((table["confidence"] >= 0.5) & (table["confidence"] < 0.55)).sum()
    bin_row = confidence[(confidence["round"] == 2) & np.isclose(confidence["bin"], 0.5)]
    assert bin_row["count"].item() == in_bin
    rounds = pd.read_csv(paths.plots_dir / "rounds.csv")
    assert tuple(rounds.columns) == ROUND_PLOT_COLUMNS
    kept = [int(pd.read_parquet(paths.refined(k))["kept"].sum()) for k in (1, 2, 3)]
    assert rounds["kept"].tolist() == kept
    # Round 1 has no round before it; round k's flips are the items whose teacher
    # prediction differs from round k-1's (the fixture draws both independently).
    preds = {k: pd.read_parquet(paths.pseudo_labels(k)).set_index("item_id")["pred"] for k in (1, 2, 3)}
    planted = [int((preds[k] != preds[k - 1]).sum()) for k in (2, 3)]
    assert pd.isna(rounds["flipped"].iloc[0]) and rounds["flipped"].iloc[1:].tolist() == planted
    assert all(0 < n < 300 for n in planted)  # the comparison is not trivially all or nothing


def test_report_from_minimal_tables(tmp_path):
    """Only item_id and pred, no class list, no metrics: every page and section still renders."""
    paths = ProjectPaths(tmp_path / "minimal")
    paths.round_dir(1).mkdir(parents=True)
    paths.pseudo_labels(1).mkdir(parents=True)
    pd.DataFrame({"item_id": ["a", "b", "c"], "pred": [0, 2, 2]}).to_parquet(paths.pseudo_label_part(1, 0))
    summary = round_summary(paths, 1)
    assert summary["class_counts"]["class"].tolist() == ["0", "1", "2"]  # names from indices
    assert summary["class_counts"]["teacher"].tolist() == [1, 0, 2]
    assert summary["quantiles"].empty and summary["rules"].empty
    index = write_report(paths, paths.root / "reports", range(2))
    text = (index.parent / "round1.html").read_text()
    page = Page(text)
    assert set(ROUND_SECTIONS) <= set(page.ids)
    assert _unavailable(text, "confidence") and _unavailable(text, "low-confidence")
    assert text.count('class="noimg"') == 3  # no path column: placeholders, not broken images
    assert write_plot_data(paths, paths.plots_dir, range(2))[1].read_text().strip() == ",".join(CONFIDENCE_PLOT_COLUMNS)
