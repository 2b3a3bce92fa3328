"""A tiny multi-label prepared directory written by hand (contract 1), and params for it.

Two classes, each an object in one half of an 8x8 grey image: "left" is a bright left
half, "right" a bright right half; an image shows none, one or both. The manifest has
`labels` (pipe-joined names, "" = empty set) for labeled/val/test rows, null for
unlabeled ones, and an all-null Int64 `label` column.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from conftest import REPO_ROOT
from selftrain.config import params_from_dict
from selftrain.label_columns import join_labels

CLASS_NAMES = ("left", "right")
# Every label set, in the order rows cycle through them.
LABEL_SETS = ((), ("left",), ("right",), ("left", "right"))
# Rows per split; each split cycles through LABEL_SETS.
SPLIT_SIZES = {"labeled": 16, "unlabeled": 12, "val": 8, "test": 8}


def mosaic_image(label_set: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """An 8x8 uint8 image: each half bright when its class is in the set, plus noise."""
    image = np.full((8, 8), 20, np.int64)
    if "left" in label_set:
        image[:, :4] = 220
    if "right" in label_set:
        image[:, 4:] = 220
    return np.clip(image + rng.integers(0, 30, image.shape), 0, 255).astype(np.uint8)


def write_prepared(root: Path, seed: int = 0) -> Path:
    """Images, manifest.parquet, classes.json and image_size.json under `root`; returns
    the manifest's path."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for split, size in SPLIT_SIZES.items():
        for i in range(size):
            label_set = LABEL_SETS[i % len(LABEL_SETS)]
            item_id = f"{split}-{i:03d}"
            path = f"images/{item_id}.png"
            Image.fromarray(mosaic_image(label_set, rng)).save(root / path)
            labels = None if split == "unlabeled" else join_labels(label_set)
            rows.append({"item_id": item_id, "path": path, "split": split, "labels": labels})
    manifest = pd.DataFrame(rows)
    manifest["label"] = pd.array([None] * len(manifest), dtype="Int64")
    manifest.to_parquet(root / "manifest.parquet", index=False)
    (root / "classes.json").write_text(json.dumps(list(CLASS_NAMES)))
    (root / "image_size.json").write_text(json.dumps({"image_size": 8, "channels": 3}))
    return root / "manifest.parquet"


def multilabel_params(**sections):
    """`multilabel_raw` validated."""
    return params_from_dict(multilabel_raw(**sections))


def multilabel_raw(**sections) -> dict:
    """The shipped params.yaml in the multi-label task, shrunk for 8x8 images on the CPU;
    `sections` update a section's keys (e.g. multilabel={"threshold": 0.6})."""
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["task"] = "multilabel"
    raw["data"]["source"] = "digits-mosaic"
    raw["augment"].update(device="cpu", num_threads=1)
    raw["infer"].update(batch_size=8)
    raw["teacher"].update(width=8, depth=1, epochs=2, batch_size=8, dropout=0.0, drop_path=0.0)
    for section, keys in sections.items():
        raw[section].update(keys)
    return raw
