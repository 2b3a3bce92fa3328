"""Shared pieces of the source tests: tiny images, a folders tree, a manifest tree, configs.

`folder_tree` and `manifest_tree` lay out valid raw data; `bad_manifest` writes one
with a change applied and returns a call that reads it; `with_data` edits the
shipped params' data section.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from conftest import REPO_ROOT
from selftrain.config import DataConfig
from selftrain.sources import read_manifest

SHIPPED = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


def image(path: Path, size=(9, 7), mode="L", fmt="PNG", seed=0) -> Path:
    """A tiny random image file (size is width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode="L" if mode == "L" else "RGB").save(path, fmt)
    return path


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def folder_tree(raw: Path, classes=("cat", "dog"), per_class=6, unlabeled=4) -> Path:
    """labeled/<class>/ with grey, colour, JPEG and odd-sized images; a nested unlabeled/ pool."""
    kinds = [
        dict(mode="L", fmt="PNG", size=(9, 7)),
        dict(mode="RGB", fmt="PNG", size=(13, 5)),
        dict(mode="RGB", fmt="JPEG", size=(31, 17)),
        dict(mode="L", fmt="JPEG", size=(8, 8)),
    ]
    for c, name in enumerate(classes):
        for i in range(per_class):
            kind = kinds[i % len(kinds)]
            suffix = ".jpg" if kind["fmt"] == "JPEG" else ".png"
            image(raw / "labeled" / name / f"{i:02d}{suffix}", seed=100 * c + i, **kind)
    for i in range(unlabeled):
        kind = kinds[i % len(kinds)]
        suffix = ".jpeg" if kind["fmt"] == "JPEG" else ".PNG"
        image(raw / "unlabeled" / f"day{i % 2}" / "cam" / f"u{i}{suffix}", seed=1000 + i, **kind)
    return raw


def folders_config(raw: Path, **changes) -> DataConfig:
    return DataConfig(source="folders", raw_dir=str(raw), **changes)


def manifest_tree(raw: Path) -> list[dict]:
    """Images under raw/images and the rows of a manifest describing them."""
    rows = []
    for c, name in enumerate(("None", "7")):  # class names a careless reader would turn into NA / int
        for i in range(5):
            rel = f"images/{name}_{i}.png"
            image(raw / rel, seed=10 * c + i, mode="RGB" if i % 2 else "L")
            rows.append({"path": rel, "label": name, "split": "", "group_id": f"g{i % 2}", "score": i})
    rows[0]["split"] = rows[5]["split"] = "test"
    rows[1]["split"] = rows[6]["split"] = "val"
    for i in range(3):
        rel = f"pool/sub/u{i}.jpg"
        image(raw / rel, fmt="JPEG", mode="RGB", seed=50 + i, size=(20, 11))
        rows.append({"path": rel, "label": "", "split": "", "group_id": "g9", "score": 10 + i})
    rows[-1].update(label="7", split="unlabeled")  # ground truth of an unlabeled image
    return rows


def manifest_config(raw: Path, manifest: Path, **changes) -> DataConfig:
    return DataConfig(source="manifest", raw_dir=str(raw), manifest=str(manifest), **changes)


def write_manifest(rows: list[dict] | pd.DataFrame, file: Path) -> Path:
    frame = pd.DataFrame(rows)
    if file.suffix == ".csv":
        frame.to_csv(file, index=False)
    else:
        frame.to_parquet(file, index=False)
    return file


def bad_manifest(tmp_path, change, suffix=".csv", **config):
    raw = tmp_path / "raw"
    rows = pd.DataFrame(manifest_tree(raw))
    rows = change(rows, raw) if change else rows
    file = write_manifest(rows, raw / f"m{suffix}")
    return lambda: read_manifest(file, manifest_config(raw, file, **config), 0, tmp_path / "out")


def set_cell(row, column, value):
    def change(rows, raw):
        rows.loc[row, column] = value
        return rows

    return change


def with_data(**data):
    raw = copy.deepcopy(SHIPPED)
    raw["data"].update(data)
    return raw
