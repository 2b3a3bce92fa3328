"""The report renders in a real headless browser, offline, with its images visible."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

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
