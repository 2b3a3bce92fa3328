"""The report and `dvc plots show` render in a real headless browser, offline."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import REPO_ROOT, dvc, git

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# As root in a sandbox with no network: no sandbox, no GPU, no background calls home.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1200,2400",
    # Network off: every http(s) request goes to a proxy that does not exist.
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
]


def screenshot(html_path, out_png, profile_dir):
    assert CHROMIUM, "chromium is not installed: `make test` installs it (Debian package chromium)"
    subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile_dir}", f"--screenshot={out_png}", html_path.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return np.asarray(Image.open(out_png).convert("L"), dtype=np.float32)


def test_round_page_images_render(reproduced_project, tmp_path):
    page = reproduced_project / "reports" / "round1.html"
    html = page.read_text()
    assert "<img" in html and not re.search(r"""(src|href)=["']https?://""", html)
    assert with_images_section(html, "overview")  # the page as a whole renders too
    full = screenshot(page, tmp_path / "full.png", tmp_path / "profile0")
    assert full.std() > 5, "the page rendered blank"
    # The kept-images grid alone, with and without its <img> tags: the difference
    # is what the embedded digit tiles (white ink on black) drew.
    grid = with_images_section(html, "kept-images")
    assert grid.count("<img") >= 10
    with_tiles = tmp_path / "tiles.html"
    with_tiles.write_text(grid)
    without_tiles = tmp_path / "no_tiles.html"
    without_tiles.write_text(re.sub(r"<img\b[^>]*>", "", grid))
    shown = screenshot(with_tiles, tmp_path / "with.png", tmp_path / "profile1")
    blank = screenshot(without_tiles, tmp_path / "without.png", tmp_path / "profile2")
    dark_shown, dark_blank = (shown < 60).mean(), (blank < 60).mean()
    assert dark_shown > dark_blank + 0.02, (dark_shown, dark_blank)


def with_images_section(html: str, section_id: str) -> str:
    """The page's head and nav plus one section: a page of its own."""
    head = html[: html.index("<body")]
    match = re.search(rf'<section id="{section_id}".*?</section>', html, flags=re.S)
    assert match, f"section {section_id} missing"
    return f"{head}<body>{match.group(0)}</body></html>"


def dom_after_scripts(html_path, profile_dir) -> str:
    """The page's DOM once its scripts have run (headless Chromium, network off)."""
    assert CHROMIUM, "chromium is not installed: `make test` installs it (Debian package chromium)"
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile_dir}", "--virtual-time-budget=20000", "--dump-dom",
         html_path.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.stdout


def test_dvc_plots_show_renders_offline(tmp_path):
    """The shipped .dvc/config and dvc.yaml's plots, on small plot files: every chart draws."""
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")
    dvc(project, "init", "-q")
    shutil.copy(REPO_ROOT / ".dvc" / "config", project / ".dvc" / "config")
    (project / "plots").mkdir()
    shutil.copy(REPO_ROOT / "plots" / "offline_template.html", project / "plots")
    plots = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["plots"]
    (project / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}))
    loop = project / "plots" / "loop"
    loop.mkdir()
    pd.DataFrame({"generation": [0, 1, 2], "test_accuracy": [0.8, 0.85, 0.9], "macro_f1": [0.79, 0.84, 0.9]}).to_csv(
        loop / "generations.csv", index=False
    )
    pd.DataFrame({"round": [1, 1, 2, 2], "bin": [0.5, 0.55, 0.5, 0.55], "count": [3, 9, 2, 10]}).to_csv(
        loop / "confidence.csv", index=False
    )
    dvc(project, "plots", "show")
    page = project / "dvc_plots" / "index.html"
    html = page.read_text()
    assert not re.search(r"""<script[^>]+src=["']https?://""", html)
    ids = re.findall(r'<div id\s*=\s*"([^"]+)"', html)
    assert len(ids) == len(plots)
    dom = dom_after_scripts(page, tmp_path / "profile")
    # Once vega has run, vega-embed has marked each plot's div and drawn the chart into a canvas.
    for plot_id, block in zip(ids, re.split(r'(?=<div id="[^"]+" class="vega-embed)', dom)[1:], strict=True):
        assert block.startswith(f'<div id="{plot_id}"'), plot_id
        assert re.search(r'<canvas width="[1-9]\d*" height="[1-9]\d*" class="marks"', block), plot_id
