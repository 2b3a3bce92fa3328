"""The folders source: class folders under labeled/ (and val/, test/), a pool under unlabeled/.

``<raw_dir>/labeled/<class>/**`` and ``<raw_dir>/unlabeled/**``, plus optional
``<raw_dir>/val/<class>/**`` and ``<raw_dir>/test/<class>/**``. Symlinked folders
are followed once; files that are not PNG/JPEG by name are listed as ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from selftrain.config import DataConfig
from selftrain.errors import DataError
from selftrain.sources.images import IMAGE_SUFFIXES
from selftrain.sources.locations import lexical
from selftrain.sources.prepared_manifest import FoundRows, SourceResult, build_manifest

# Folders of the folders source; labeled and unlabeled are required.
FOLDER_SPLITS = ("labeled", "unlabeled", "val", "test")


def read_folders(raw_dir: str | Path, config: DataConfig, seed: int, out_dir: str | Path) -> SourceResult:
    """The folders source: class folders under labeled/ (and val/, test/), a pool under unlabeled/."""
    raw = lexical(raw_dir)
    if not raw.is_dir():
        raise DataError(f"{raw}: data.raw_dir not found; the folders source reads labeled/ and unlabeled/ there")
    for required in ("labeled", "unlabeled"):
        if not (raw / required).is_dir():
            raise DataError(
                f"{raw / required}: missing folder; the folders source needs "
                f"{raw}/labeled/<class>/ image folders and an {raw}/unlabeled/ pool"
            )
    ignored: list[str] = []
    class_dirs = {split: _class_dirs(raw / split) for split in ("labeled", "val", "test") if (raw / split).is_dir()}
    if not class_dirs["labeled"]:
        raise DataError(f"{raw / 'labeled'}: no class folders; put each class's images in labeled/<class>/")
    if config.classes is not None:
        class_names = config.classes
        for split, dirs in class_dirs.items():
            for name in dirs:
                if name not in class_names:
                    raise DataError(
                        f"{raw / split / name}: class folder {name!r} is not in data.classes {list(class_names)}"
                    )
    else:
        class_names = tuple(sorted(class_dirs["labeled"]))
        for split in ("val", "test"):
            for name in class_dirs.get(split, []):
                if name not in class_names:
                    raise DataError(
                        f"{raw / split / name}: class folder {name!r} has no labeled/{name}/ folder; "
                        f"classes are {list(class_names)}"
                    )

    rows = FoundRows([], [], [], [], [], pd.DataFrame())
    for split, dirs in class_dirs.items():
        for name in dirs:
            folder = raw / split / name
            images = _image_files(folder, ignored)
            if not images:
                raise DataError(f"{folder}: class folder has no PNG or JPEG images")
            for file in images:
                # A labeled/ row's split is decided later (val/test may be split off it).
                rows.splits.append("" if split == "labeled" else split)
                rows.labels.append(name)
                rows.files.append(str(file))
    for file in _image_files(raw / "unlabeled", ignored):
        rows.splits.append("unlabeled")
        rows.labels.append(None)
        rows.files.append(str(file))
    rows.item_ids = [Path(f).relative_to(raw).as_posix() for f in rows.files]
    rows.where = list(rows.files)
    rows.metadata = pd.DataFrame(index=range(len(rows.files)))
    origin = FolderOrigin(raw)
    return build_manifest(rows, class_names, config, seed, out_dir, origin, ignored)


def _class_dirs(split_dir: Path) -> list[str]:
    """Class folder names under a split folder; an image lying beside them is an error."""
    names = []
    for entry in sorted(split_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            names.append(entry.name)
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            raise DataError(
                f"{entry}: images in {split_dir.name}/ belong in a class folder, "
                f"{split_dir.name}/<class>/{entry.name}"
            )
    return names


def _image_files(folder: Path, ignored: list[str]) -> list[Path]:
    """PNG/JPEG files under `folder` in sorted order, following symlinked folders once.

    Hidden files and folders are passed over; other files are added to `ignored`.
    """
    found: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop, or two links to one folder
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if path.suffix.lower() in IMAGE_SUFFIXES:
                found.append(path)
            else:
                ignored.append(str(path))
    return found


@dataclass(frozen=True)
class FolderOrigin:
    """Names the raw folder in split errors, and says which folder to add."""

    raw: Path

    def no_rows(self, split: str) -> str:
        if split == "unlabeled":
            return f"{self.raw / 'unlabeled'}: no readable PNG or JPEG images in the unlabeled pool"
        return f"{self.raw}: no {split} images"

    def split_hint(self, split: str) -> str:
        return f"add {self.raw / split}/<class>/ folders, or more labeled images per class"
