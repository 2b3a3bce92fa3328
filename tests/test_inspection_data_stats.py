"""prepare's shift check shown by `selftrain inspect --data` and the report's index page."""

from __future__ import annotations

import json

from report_fixtures import Options, Page, build_project, section_of
from selftrain.data import STATS_FILE, prepare_digits
from selftrain.config import DataConfig
from selftrain.inspection.data_stats import read_stats, stats_table
from selftrain.paths import ProjectPaths
from selftrain.report.pages import write_report
from selftrain.sources.stats import write_stats
from selftrain_cli.main import main


def test_table_has_a_row_per_split_with_the_shift(tmp_path):
    dataset = prepare_digits(tmp_path, DataConfig(subset=200, labeled_fraction=0.2), seed=0)
    write_stats(dataset, tmp_path)
    stats = read_stats(tmp_path)
    table = stats_table(stats)
    assert table["split"].tolist() == ["labeled", "unlabeled", "val", "test"]
    assert table["count"].sum() == 200
    assert table.loc[table["split"] == "labeled", "shift"].isna().all()
    unlabeled = table.set_index("split").loc["unlabeled"]
    assert unlabeled["shift"] == stats["shift"]["unlabeled"]
    width = stats["splits"]["unlabeled"]["width"]
    assert unlabeled["width"] == f"{width['min']}/{width['median']:g}/{width['max']}"
    assert stats_table(read_stats(tmp_path / "absent")).empty


def test_inspect_data_prints_the_table(tmp_path, capsys):
    prepared = ProjectPaths(tmp_path).prepared_dir
    write_stats(prepare_digits(prepared, DataConfig(subset=200, labeled_fraction=0.2), seed=0), prepared)
    assert main(["--project-dir", str(tmp_path), "inspect", "--data", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["data"]
    assert [r["split"] for r in rows] == ["labeled", "unlabeled", "val", "test"]
    assert main(["--project-dir", str(tmp_path), "inspect", "--data"]) == 0
    out = capsys.readouterr().out
    assert "shift" in out and "unlabeled" in out and "8/8/8" in out


def test_report_index_has_the_data_section(tmp_path):
    paths = build_project(tmp_path / "p", Options(rounds=1, items=20))
    index = write_report(paths, paths.root / "reports", range(2))
    assert "no data/prepared/stats.json" in section_of(index.read_text(), "data")
    side = {"min": 8, "median": 8.0, "max": 8}
    labeled = {"count": 5, "sampled": 5, "pixel_mean": 0.2, "pixel_std": 0.1, "width": side, "height": side}
    stats = {"splits": {"labeled": labeled}, "shift": {}}
    (paths.prepared_dir / STATS_FILE).write_text(json.dumps(stats))
    index = write_report(paths, paths.root / "reports", range(2))
    assert "data-table" in Page(index.read_text()).ids
    assert "0.2" in section_of(index.read_text(), "data")
