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
    with_images = screenshot(page, tmp_path / "with.png", tmp_path / "profile1")
    # The same page with every image removed: the difference is what the images drew.
    stripped = tmp_path / "round1_no_images.html"
    stripped.write_text(re.sub(r"<img\b[^>]*>", "", html))
    without_images = screenshot(stripped, tmp_path / "without.png", tmp_path / "profile2")
    assert with_images.std() > 5, "the page rendered blank"
    dark_with = (with_images < 60).mean()
    dark_without = (without_images < 60).mean()
    # Digit tiles are white ink on black: rendered images add many dark pixels.
    assert dark_with > dark_without + 0.01, (dark_with, dark_without)
