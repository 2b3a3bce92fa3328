"""Where the prepare stage's images come from: `data.source` in params.yaml.

- ``digits``: scikit-learn's handwritten digits, written out as PNGs (`prepare_digits`).
- ``folders``: ``<raw_dir>/labeled/<class>/**`` and ``<raw_dir>/unlabeled/**``, plus
  optional ``<raw_dir>/val/<class>/**`` and ``<raw_dir>/test/<class>/**``.
- ``manifest``: a CSV or Parquet file with ``path`` and ``label`` (empty: unlabeled),
  optional ``split`` and ``item_id``, and any metadata columns, which are carried into
  the prepared manifest and from there into every round's tables (for rules).

Folders and manifests reference images in place: the prepared manifest's ``path`` is
relative to its own directory (``../raw/labeled/cat/1.png``), computed without
resolving symlinks, so artifacts hash the same in any clone and under any DVC cache
link type. Labeled rows with no val/test split of their own are split into val and
test by ``data.val_fraction``/``data.test_fraction``, per class; everything else that
has a label stays labeled (``data.labeled_fraction`` only applies to digits).

Every referenced image is decoded once here. A bad image in the labeled, val or test
set is an error; a bad one in the unlabeled pool is skipped and listed in
``skipped.json``, so one broken file in a million does not stop a nightly run.
``source.json`` records a digest of every referenced file's bytes: the images stay
under ``raw_dir``, so without it an image edited in place would leave ``data/prepared``
unchanged and DVC would not rerun the stages after prepare.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from selftrain.atomic import write_json, write_parquet
from selftrain.config import DataConfig
from selftrain.data import CLASSES_FILE, CORE_COLUMNS, TRUTH_COLUMN, Dataset, load_dataset, prepare_digits
from selftrain.errors import DataError
from selftrain.refine.inputs import DERIVED_COLUMNS, REQUIRED_COLUMNS, RESULT_COLUMNS

MANIFEST_FILE = "manifest.parquet"
SKIPPED_FILE = "skipped.json"
SOURCE_FILE = "source.json"
IMAGES_DIR = "images"
# What prepare may leave in its output directory; a source removes the ones it does not write.
PREPARED_ENTRIES = (MANIFEST_FILE, CLASSES_FILE, SKIPPED_FILE, SOURCE_FILE, IMAGES_DIR)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_FORMATS = ("PNG", "JPEG")
# Folders of the folders source; labeled and unlabeled are required.
FOLDER_SPLITS = ("labeled", "unlabeled", "val", "test")
# Manifest columns with a meaning of their own; every other column is metadata.
MANIFEST_REQUIRED = ("path", "label")
MANIFEST_OPTIONAL = ("split", "item_id")
# The round tables add these columns next to the manifest's metadata: a metadata
# column of the same name would be shadowed or overwritten there.
ROUND_COLUMNS = tuple(
    dict.fromkeys(
        c
        for c in ("teacher_gen", *REQUIRED_COLUMNS, *DERIVED_COLUMNS, *RESULT_COLUMNS)
        if c not in CORE_COLUMNS
    )
)
# Images checked per batch of threads (PIL and hashlib release the GIL while decoding).
CHECK_BATCH = 4096
# At most this many bad labeled images are listed in one error.
MAX_LISTED = 20


@dataclass(frozen=True)
class SourceResult:
    """What a source found: the prepared manifest (paths relative to the output
    directory), the class names in index order, and what it left out."""

    manifest: pd.DataFrame
    class_names: tuple[str, ...]
    # Unreadable unlabeled images: {"path": manifest-relative path, "reason": ...}.
    skipped: list[dict] = field(default_factory=list)
    # Files that are not PNG/JPEG by name (READMEs, .txt, .dvc files), manifest-relative.
    ignored: list[str] = field(default_factory=list)
    # md5 over every referenced file's path and bytes (see the module docstring).
    content_md5: str = ""


@dataclass(frozen=True)
class Prepared:
    """The prepared dataset as the later stages load it, and how many unlabeled images were skipped."""

    dataset: Dataset
    skipped: int


@dataclass
class _Rows:
    """Rows a source reader found, before images are checked and splits assigned.

    `split` is "" for labeled rows that have no split yet; `label` is the class name
    (None: unlabeled); for rows in the unlabeled split a label is ground truth.
    `where` names each row in error messages (a file, or a manifest line).
    """

    files: list[str]
    item_ids: list[str]
    splits: list[str]
    labels: list[str | None]
    where: list[str]
    metadata: pd.DataFrame


def prepare_source(out_dir: str | Path, config: DataConfig, seed: int) -> Prepared:
    """Write the prepared manifest (and digits' images) for `config.source` under `out_dir`."""
    out_dir = Path(out_dir)
    if config.source == "digits":
        _remove_stale(out_dir, keep=(MANIFEST_FILE, CLASSES_FILE, IMAGES_DIR))
        return Prepared(prepare_digits(out_dir, config, seed), skipped=0)
    if config.source == "folders":
        result = read_folders(config.raw_dir, config, seed, out_dir)
    elif config.source == "manifest":
        result = read_manifest(config.manifest, config, seed, out_dir)
    else:  # DataConfig.validate already refused it; this keeps the dispatch exhaustive.
        raise DataError(f"data.source: unknown source {config.source!r}")
    _remove_stale(out_dir, keep=(MANIFEST_FILE, CLASSES_FILE, SKIPPED_FILE, SOURCE_FILE))
    write_json(list(result.class_names), out_dir / CLASSES_FILE)
    write_json(
        {"count": len(result.skipped), "skipped": result.skipped, "ignored": result.ignored},
        out_dir / SKIPPED_FILE,
    )
    write_json(
        {
            "source": config.source,
            "items": len(result.manifest),
            "skipped": len(result.skipped),
            "content_md5": result.content_md5,
        },
        out_dir / SOURCE_FILE,
    )
    write_parquet(result.manifest, out_dir / MANIFEST_FILE)
    return Prepared(load_dataset(out_dir / MANIFEST_FILE), skipped=len(result.skipped))


# --- folders -----------------------------------------------------------------


def read_folders(raw_dir: str | Path, config: DataConfig, seed: int, out_dir: str | Path) -> SourceResult:
    """The folders source: class folders under labeled/ (and val/, test/), a pool under unlabeled/."""
    raw = _lexical(raw_dir)
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

    rows = _Rows([], [], [], [], [], pd.DataFrame())
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
    return _finish(rows, class_names, config, seed, out_dir, origin, ignored)


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
    raw: Path

    def no_rows(self, split: str) -> str:
        if split == "unlabeled":
            return f"{self.raw / 'unlabeled'}: no readable PNG or JPEG images in the unlabeled pool"
        return f"{self.raw}: no {split} images"

    def split_hint(self, split: str) -> str:
        return f"add {self.raw / split}/<class>/ folders, or more labeled images per class"


# --- manifest ----------------------------------------------------------------


def read_manifest(
    manifest_file: str | Path | None, config: DataConfig, seed: int, out_dir: str | Path
) -> SourceResult:
    """The manifest source: one row per image, from a CSV or Parquet file.

    Relative paths start at the manifest file's directory. Every path must resolve
    (symlinks and ``..`` followed) inside ``data.raw_dir`` unless
    ``data.allow_outside_root`` is set, and so must the manifest file itself: DVC
    tracks raw_dir, so only what lies in it reruns prepare when it changes.
    """
    if manifest_file is None:
        raise DataError("data.manifest: required when data.source is 'manifest'")
    file = _lexical(manifest_file)
    raw = _lexical(config.raw_dir)
    if not file.is_file():
        raise DataError(f"{file}: manifest not found (data.manifest)")
    roots = _allowed_roots(raw)
    if not config.allow_outside_root and not _inside(file, roots, raw):
        raise DataError(
            f"{file}: the manifest lies outside data.raw_dir {raw}, where DVC would not see it "
            "change; move it there or set data.allow_outside_root: true"
        )
    table = _read_table(file)
    is_csv = file.suffix.lower() == ".csv"

    def where(i: int) -> str:
        # CSV: the line a text editor shows (the header is line 1); Parquet: pandas' row index.
        return f"{file}: line {i + 2}" if is_csv else f"{file}: row {i}"

    columns = [str(c) for c in table.columns]
    table.columns = columns
    for column in MANIFEST_REQUIRED:
        if column not in columns:
            raise DataError(f"{file}: missing required column {column!r}; columns are {columns}")
    if TRUTH_COLUMN in columns:
        raise DataError(
            f"{file}: column {TRUTH_COLUMN!r} is reserved; give ground truth of unlabeled "
            "images as their label with split 'unlabeled'"
        )
    clashes = [c for c in columns if c in ROUND_COLUMNS]
    if clashes:
        raise DataError(
            f"{file}: column {clashes[0]!r} is also a column of the round tables "
            f"({list(ROUND_COLUMNS)}); rename it"
        )
    if table.empty:
        raise DataError(f"{file}: the manifest has no rows")

    n = len(table)
    texts = {c: _texts(table[c]) if c in table.columns else [None] * n for c in (*MANIFEST_REQUIRED, *MANIFEST_OPTIONAL)}
    base = file.parent
    files, splits, labels = [], [], []
    for i in range(n):
        path = texts["path"][i]
        if path is None or not path.strip():
            raise DataError(f"{where(i)}: empty path")
        if "\x00" in path:
            raise DataError(f"{where(i)}: path {path!r} contains a NUL character")
        files.append(os.path.normpath(base / path))
        label = texts["label"][i]
        labels.append(label.strip() if label is not None and label.strip() else None)
        split = (texts["split"][i] or "").strip().lower()
        if split and split not in FOLDER_SPLITS:
            raise DataError(f"{where(i)}: split {texts['split'][i]!r}; expected one of {list(FOLDER_SPLITS)} or empty")
        if labels[i] is None:
            if split in ("labeled", "val", "test"):
                raise DataError(f"{where(i)}: split {split!r} needs a label, and the label is empty")
            split = "unlabeled"
        splits.append(split)

    first_row: dict[str, int] = {}
    for i, full in enumerate(files):
        if full in first_row:
            raise DataError(
                f"{where(i)}: path {texts['path'][i]!r} is the same file as {where(first_row[full])} "
                f"({full}); each image may appear once"
            )
        first_row[full] = i
    if not config.allow_outside_root:
        for i, full in enumerate(files):
            if not _inside(Path(full), roots, raw):
                raise DataError(
                    f"{where(i)}: path {texts['path'][i]!r} resolves to {os.path.realpath(full)}, "
                    f"outside the data root {raw}; set data.allow_outside_root: true to allow it"
                )

    if "item_id" in table.columns:
        item_ids = texts["item_id"]
        first_id: dict[str, int] = {}
        for i, item_id in enumerate(item_ids):
            if item_id is None or not item_id.strip():
                raise DataError(f"{where(i)}: empty item_id")
            if item_id in first_id:
                raise DataError(f"{where(i)}: item_id {item_id!r} repeats {where(first_id[item_id])}")
            first_id[item_id] = i
    else:
        item_ids = [Path(os.path.relpath(f, raw)).as_posix() for f in files]

    if config.classes is not None:
        class_names = config.classes
    else:
        class_names = tuple(sorted({label for label in labels if label is not None}))
        if len(class_names) < 2:
            raise DataError(
                f"{file}: labels name {len(class_names)} class(es) {list(class_names)}; "
                "need at least two (or list them in data.classes)"
            )
    metadata = table.drop(columns=[c for c in (*MANIFEST_REQUIRED, *MANIFEST_OPTIONAL) if c in table.columns])
    rows = _Rows(files, list(item_ids), splits, labels, [where(i) for i in range(n)], metadata.reset_index(drop=True))
    return _finish(rows, class_names, config, seed, out_dir, ManifestOrigin(file), [])


def _read_table(file: Path) -> pd.DataFrame:
    """The manifest as a frame: metadata columns with pandas' usual types, the
    columns with a meaning (path, label, split, item_id) as text exactly as written."""
    text_columns = (*MANIFEST_REQUIRED, *MANIFEST_OPTIONAL)
    try:
        if file.suffix.lower() == ".csv":
            table = pd.read_csv(file, dtype={c: str for c in text_columns})
            # A label "None" or "NA" is a class name, not a missing value: read these
            # columns again with only the empty cell meaning "none".
            texts = pd.read_csv(file, usecols=lambda c: c in text_columns, dtype=str, keep_default_na=False)
            for column in texts.columns:
                table[column] = texts[column].where(texts[column] != "", None)
        else:
            table = pd.read_parquet(file)
    except (ValueError, OSError, UnicodeError, TypeError, KeyError, ImportError) as exc:
        # pandas' and pyarrow's parse errors are ValueError/OSError subclasses.
        raise DataError(f"{file}: cannot read the manifest: {type(exc).__name__}: {exc}") from None
    return table.reset_index(drop=True)


def _texts(column: pd.Series) -> list[str | None]:
    """Cells as text; missing cells as None; whole-number floats without ".0" (a
    Parquet integer column with nulls arrives as floats)."""
    out: list[str | None] = []
    for value in column.tolist():
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            out.append(None)
        elif isinstance(value, float) and value.is_integer():
            out.append(str(int(value)))
        elif isinstance(value, bytes):
            out.append(value.decode("utf-8", errors="replace"))
        else:
            out.append(str(value))
    return out


@dataclass(frozen=True)
class ManifestOrigin:
    file: Path

    def no_rows(self, split: str) -> str:
        if split == "unlabeled":
            return f"{self.file}: no readable unlabeled images (rows with an empty label or split 'unlabeled')"
        return f"{self.file}: no {split} rows"

    def split_hint(self, split: str) -> str:
        return f"give some rows split {split!r}, or add more labeled rows per class"


# --- shared: check images, assign splits, build the manifest -----------------


def _finish(
    rows: _Rows,
    class_names: tuple[str, ...],
    config: DataConfig,
    seed: int,
    out_dir: str | Path,
    origin: FolderOrigin | ManifestOrigin,
    ignored: list[str],
) -> SourceResult:
    out = _lexical(out_dir)
    index_of = {name: i for i, name in enumerate(class_names)}
    for i, label in enumerate(rows.labels):
        if label is not None and label not in index_of:
            raise DataError(f"{rows.where[i]}: label {label!r} is not in the class list {list(class_names)}")

    checks = check_images(rows.files, config.image_size)
    bad = [(i, reason) for i, (reason, _) in enumerate(checks) if reason is not None]
    bad_labeled = [(i, reason) for i, reason in bad if rows.splits[i] != "unlabeled"]
    if bad_labeled:
        listed = "\n".join(f"  {_where_file(rows, i)}: {reason}" for i, reason in bad_labeled[:MAX_LISTED])
        more = f"\n  ... and {len(bad_labeled) - MAX_LISTED} more" if len(bad_labeled) > MAX_LISTED else ""
        first = _where_file(rows, bad_labeled[0][0])
        raise DataError(
            f"{first}: {bad_labeled[0][1]} ({len(bad_labeled)} unreadable image(s) in the "
            f"labeled/val/test sets; these must all be fixed):\n{listed}{more}"
        )
    keep = np.ones(len(rows.files), dtype=bool)
    skipped = []
    for i, reason in bad:
        keep[i] = False
        skipped.append({"path": _relative(rows.files[i], out), "reason": reason})

    splits = np.asarray(rows.splits, dtype=object)[keep]
    labels = np.asarray([index_of[l] if l is not None else -1 for l in rows.labels], dtype=np.int64)[keep]
    is_unlabeled = splits == "unlabeled"
    _split_off(splits, labels, config, seed)
    for split in ("unlabeled", "test", "val"):
        if not (splits == split).any():
            hint = "" if split == "unlabeled" else f"; {origin.split_hint(split)}"
            raise DataError(f"{origin.no_rows(split)}{hint}")
    labeled_counts = np.bincount(labels[splits == "labeled"], minlength=len(class_names))
    for c, count in enumerate(labeled_counts):
        if count == 0:
            raise DataError(
                f"{origin.no_rows('labeled')} of class {class_names[c]!r}; every class needs "
                "at least one labeled image for the teacher to learn it"
            )

    files = [f for f, k in zip(rows.files, keep) if k]
    paths = [_relative(f, out) for f in files]
    label_column = pd.array(np.where(is_unlabeled, -1, labels), dtype="Int64")
    label_column[is_unlabeled] = pd.NA
    truth = pd.array(np.where(is_unlabeled, labels, -1), dtype="Int64")
    truth[~is_unlabeled | (labels < 0)] = pd.NA
    manifest = pd.DataFrame(
        {
            "item_id": [item for item, k in zip(rows.item_ids, keep) if k],
            "path": paths,
            "split": splits.astype(str),
            "label": label_column,
            TRUTH_COLUMN: truth,
        }
    )
    metadata = rows.metadata[keep].reset_index(drop=True)
    manifest = pd.concat([manifest, metadata], axis=1)
    digest = hashlib.md5()
    for path, (_, md5) in zip(paths, (c for c, k in zip(checks, keep) if k)):
        digest.update(f"{path}\t{md5}\n".encode())
    return SourceResult(
        manifest=manifest,
        class_names=tuple(class_names),
        skipped=skipped,
        ignored=[_relative(f, out) for f in ignored],
        content_md5=digest.hexdigest(),
    )


def _where_file(rows: _Rows, i: int) -> str:
    return rows.where[i] if rows.where[i] == rows.files[i] else f"{rows.where[i]} ({rows.files[i]})"


def _split_off(splits: np.ndarray, labels: np.ndarray, config: DataConfig, seed: int) -> None:
    """Assign labeled rows without a split ("") to test, val or labeled, in place.

    Test takes `test_fraction` of the unassigned rows, then val takes `val_fraction`
    of what is left (as for digits, val is a share of the non-test pool), each only
    when no row already has that split. Stratified by class, at least one row when
    there is any to spare, and every class keeps one labeled row. Seeded.
    """
    pool = splits == ""
    for split, fraction, seed_offset in (("test", config.test_fraction, 0), ("val", config.val_fraction, 1)):
        if (splits == split).any() or not pool.any():
            continue
        rng = np.random.default_rng([seed, seed_offset])
        classes = np.unique(labels[pool])
        counts = np.array([(pool & (labels == c)).sum() for c in classes])
        for c, take in zip(classes, _allocate(counts, fraction)):
            if take:
                members = np.flatnonzero(pool & (labels == c))
                chosen = rng.choice(members, size=take, replace=False)
                splits[chosen] = split
                pool[chosen] = False
    splits[pool] = "labeled"


def _allocate(counts: np.ndarray, fraction: float) -> np.ndarray:
    """Rows to take from each class: `fraction` of the total (at least 1), shared by
    largest remainder, never a class's last row."""
    caps = np.maximum(counts - 1, 0)
    total = min(max(1, int(np.floor(fraction * counts.sum() + 0.5))), int(caps.sum()))
    quotas = fraction * counts
    take = np.minimum(np.floor(quotas).astype(np.int64), caps)
    # Largest remainder first; ties go to the earlier class.
    order = sorted(range(len(counts)), key=lambda c: (-(quotas[c] - take[c]), c))
    while take.sum() < total:
        for c in order:
            if take.sum() < total and take[c] < caps[c]:
                take[c] += 1
    return take


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


# --- paths -------------------------------------------------------------------


def _lexical(path: str | Path) -> Path:
    """Absolute, with `..` folded but symlinks kept: the path as the user laid it out."""
    return Path(os.path.normpath(os.path.abspath(path)))


def _relative(file: str | Path, out: Path) -> str:
    """`file` relative to the prepared manifest's directory, POSIX-style."""
    return Path(os.path.relpath(file, out)).as_posix()


def _allowed_roots(raw: Path) -> tuple[Path, ...]:
    """Real directories a manifest path may resolve into: raw_dir, plus the project's
    DVC cache (with the symlink cache type, files under raw_dir link into it)."""
    roots = [Path(os.path.realpath(raw))]
    for parent in (raw, *raw.parents):
        if (parent / ".dvc").is_dir():
            roots.append(Path(os.path.realpath(parent / ".dvc" / "cache")))
            break
    return tuple(roots)


def _inside(file: Path, roots: tuple[Path, ...], raw: Path) -> bool:
    real = Path(os.path.realpath(file))
    if real.is_relative_to(roots[0]):
        return True
    # A link into the DVC cache counts only for a path that is lexically under raw_dir.
    return file.is_relative_to(raw) and any(real.is_relative_to(r) for r in roots[1:])


def _remove_stale(out_dir: Path, keep: tuple[str, ...]) -> None:
    """Remove what another source wrote in `out_dir` (DVC clears outputs itself; a
    hand run after switching sources would otherwise leave stale files)."""
    for name in PREPARED_ENTRIES:
        if name in keep:
            continue
        target = out_dir / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
