"""Decode every referenced image once: why a file is unusable, or the md5 of its bytes.

A bad image in the labeled, val or test set is an error; a bad one in the unlabeled
pool is skipped (see `prepared_manifest`). Reasons never include memory addresses,
so ``skipped.json`` is the same on every run.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_FORMATS = ("PNG", "JPEG")
# Images checked per batch of threads (PIL and hashlib release the GIL while decoding).
CHECK_BATCH = 4096


def check_images(files: list[str], image_size: int) -> list[tuple[str | None, str]]:
    """(reason it is unreadable or None, md5 of its bytes) for each file, in order."""
    results: list[tuple[str | None, str]] = []
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for start in range(0, len(files), CHECK_BATCH):
            batch = files[start : start + CHECK_BATCH]
            results.extend(pool.map(lambda f: check_image(f, image_size), batch))
    return results


def check_image(file: str | Path, image_size: int = 32) -> tuple[str | None, str]:
    """Read a file once and decode it: (None, md5) for a whole PNG/JPEG, else (reason, "").

    PNG is verified (chunk CRCs, the end marker) and decoded; JPEG is decoded at the
    smallest scale that still covers `image_size` (cheap, and it still reads the
    whole stream, so truncation shows). Reasons never include memory addresses, so
    skipped.json is the same on every run.
    """
    try:
        data = Path(file).read_bytes()
    except FileNotFoundError:
        return "file not found", ""
    except OSError as exc:
        return f"cannot read the file: {exc.strerror or type(exc).__name__}", ""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in IMAGE_FORMATS:
                return f"a {image.format} image, not PNG or JPEG", ""
            if image.format == "PNG":
                image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (image_size, image_size))
            image.load()
    except UnidentifiedImageError:
        return "not a PNG or JPEG image (unrecognised contents)", ""
    # PIL reports a damaged file with many exception types (OSError, SyntaxError,
    # ValueError, EOFError, struct.error, DecompressionBombError); any of them means
    # this file cannot be used, and for the unlabeled pool it must not stop the run.
    except Exception as exc:  # noqa: BLE001
        message = re.sub(r" at 0x[0-9a-fA-F]+", "", str(exc)) or type(exc).__name__
        return f"damaged or truncated image: {message}", ""
    return None, hashlib.md5(data).hexdigest()
