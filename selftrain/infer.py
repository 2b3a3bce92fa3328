"""The round's pseudo-label table: the teacher's predictions over the pool, written as parts.

The predictions come from `selftrain.prediction` (eval mode, no augmentation, fixed order).

The round's table is a directory with one part per shard of the pool
(`part-00000.parquet`, ...). Shard i is the i-th contiguous range of the pool in
manifest order and the part names sort in shard order, so `pd.read_parquet` of the
directory reads the rows in pool order. A part is streamed to disk one row group
per batch: memory holds one batch of probabilities, never the pool's (N, C).

A part carries a fingerprint of what made it (teacher weights, the params the
stage reads, the shard's manifest rows, this code) in its parquet metadata; a
part whose fingerprint matches is not computed again, any other is replaced.

Each row also gets its `ood_score` (`infer.ood_score`, see `selftrain.ood`) from the
same forward pass; a feature score first runs the teacher over the labeled rows to
place the class centroids.

The table's columns, for the multi-class and the multi-label task (params `task`),
are `selftrain.pseudo_table`'s.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn

from selftrain import augment as _augment, data as _data, models as _models
from selftrain import multilabel_predictions as _multilabel_predictions, pseudo_table as _pseudo_table
from selftrain import normalization as _normalization, prediction as _prediction, transforms as _transforms
from selftrain.atomic import atomic_path
from selftrain.config import Params
from selftrain.data import Dataset, input_size
from selftrain.errors import DataError
from selftrain.label_columns import LABELS_COLUMN, TRUE_LABELS_COLUMN, split_labels
from selftrain.ood import OodScorer, reference_digest, score_kind
from selftrain.paths import pseudo_label_part
from selftrain.prediction import fit_ood_scorer, predict_scored
# The table's columns and rows live in pseudo_table; readers import them from here too.
from selftrain.pseudo_table import (  # noqa: F401
    MULTILABEL_COLUMNS,
    PSEUDO_LABEL_COLUMNS,
    LabelSets,
    label_sets_for,
    pseudo_label_schema,
    pseudo_label_table,
    without_label_columns,
)
from selftrain.truth import TRUTH_COLUMN

# Parquet (schema) metadata key of a part's fingerprint.
FINGERPRINT_KEY = b"selftrain.fingerprint"
# Bump when a part's content changes for a reason the fingerprint cannot see.
_PART_FORMAT = b"pseudo-label-part/2"
# Code besides this module that shapes a part: decoding, resizing and normalising
# (augment, transforms, normalization), the network (models), path resolution (data),
# the forward pass and scores (prediction), the table's columns (pseudo_table, and
# multilabel_predictions for label sets). A change to any of them recomputes parts.
PREPROCESSING_CODE = (
    _augment.__file__,
    _transforms.__file__,
    _data.__file__,
    _models.__file__,
    _normalization.__file__,
    _prediction.__file__,
    _pseudo_table.__file__,
    _multilabel_predictions.__file__,
)


@dataclass(frozen=True)
class ShardResult:
    shard_id: int
    rows: int
    # False when a part with the same fingerprint was already there and was kept.
    written: bool


def shard_range(total: int, shard_id: int, num_shards: int) -> tuple[int, int]:
    """[start, end) of shard `shard_id`: contiguous ranges whose sizes differ by at most one."""
    if not 0 <= shard_id < num_shards:
        raise ValueError(f"shard_id must be in [0, {num_shards}), got {shard_id}")
    return total * shard_id // num_shards, total * (shard_id + 1) // num_shards


def model_digest(model: nn.Module) -> str:
    """sha256 of a model's state (names, shapes and bytes of every tensor)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().cpu().reshape(-1).contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def source_digest(*files: str | Path) -> str:
    """sha256 of source files, e.g. the code that shapes a part."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(Path(file).read_bytes())
    return digest.hexdigest()


def shard_fingerprint(
    teacher_digest: str,
    rows: pd.DataFrame,
    params: Params,
    teacher_gen: int,
    image_size: int,
    code: str = "",
    ood: str = "",
    label_sets: LabelSets | None = None,
) -> str:
    """Identity of a part: what DVC tracks for the infer stage, narrowed to one shard.

    Args:
        teacher_digest: `model_digest` of the teacher.
        rows: the shard's pool rows (manifest order): their ids, paths and metadata.
        params: `augment.device`, `infer.batch_size`, `data.mean` and `data.std` (the keys
            the stage declares, but `augment.num_threads` and `infer.num_shards`, which
            change no prediction, and `data.image_size`, which `image_size` resolves).
        image_size: the side the images are read at (prepare's record of `data.image_size`).
        code: digest of the calling stage's code; this module's own source and
            PREPROCESSING_CODE are added here.
        ood: `selftrain.ood.reference_digest` of the score (`infer.ood_score` and the
            labeled rows its centroids come from).
        label_sets: the multi-label round's classes and thresholds (None: multi-class).
    """
    digest = hashlib.sha256(_PART_FORMAT)
    for part in (
        teacher_digest,
        str(teacher_gen),
        str(image_size),
        str(params.augment.device),
        str(params.infer.batch_size),
        repr(params.data.mean),
        repr(params.data.std),
        source_digest(__file__, *PREPROCESSING_CODE),
        code,
        ood,
        params.task,
        repr(label_sets),
        repr(list(rows.columns)),
    ):
        digest.update(part.encode() + b"\0")
    digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def part_fingerprint(path: str | Path) -> str | None:
    """The fingerprint stored in a part, or None (no file, not parquet, no fingerprint)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return None
    value = metadata.get(FINGERPRINT_KEY)
    return value.decode() if value is not None else None


def write_part(
    model: nn.Module,
    dataset: Dataset,
    rows: pd.DataFrame,
    schema: pa.Schema,
    params: Params,
    teacher_gen: int,
    fingerprint: str,
    path: str | Path,
    scorer: OodScorer,
    label_sets: LabelSets | None = None,
) -> None:
    """Predict `rows` and stream their table into the parquet file `path`, atomically:
    one row group per batch, the fingerprint in the file's metadata."""
    rows = rows.reset_index(drop=True)
    empty = pseudo_label_table(rows.iloc[:0], np.empty((0, dataset.num_classes)), teacher_gen, label_sets=label_sets)
    # The schema with pandas' metadata (e.g. a nullable Int64 metadata column reads back as Int64).
    file_schema = pa.Table.from_pandas(empty, schema=schema, preserve_index=False).schema
    file_schema = file_schema.with_metadata({**(file_schema.metadata or {}), FINGERPRINT_KEY: fingerprint.encode()})
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, file_schema) as writer:
        if rows.empty:  # more shards than rows: an empty part keeps the shard count visible
            writer.write_table(pa.Table.from_pandas(empty, schema=schema, preserve_index=False))
            return
        position = 0
        for idx, probs, ood_score in predict_scored(model, dataset, rows, params, scorer):
            # The part is in pool order only if the loader is; it promises to be (eval mode).
            if not np.array_equal(idx, np.arange(position, position + len(idx))):
                raise DataError(f"{path}: the loader returned rows out of order at row {position}")
            position += len(idx)
            batch = pseudo_label_table(rows.iloc[idx], probs, teacher_gen, ood_score, label_sets)
            writer.write_table(pa.Table.from_pandas(batch, schema=schema, preserve_index=False))
        if position != len(rows):
            raise DataError(f"{path}: the loader returned {position} of {len(rows)} rows")


def infer_pool(
    model: nn.Module,
    dataset: Dataset,
    params: Params,
    teacher_gen: int,
    out_dir: str | Path,
    *,
    num_shards: int,
    shard_ids: Sequence[int] | None = None,
    code: str = "",
    on_shard: Callable[[ShardResult], None] | None = None,
    scorer: OodScorer | None = None,
) -> list[ShardResult]:
    """Write the teacher's unnoised predictions over the unlabeled pool as parts of `out_dir`.

    Args:
        num_shards: how many contiguous shards the pool is split into.
        shard_ids: the shards to write; None writes every shard and then removes
            everything else from `out_dir` (parts of a larger shard count, temporary
            files of interrupted runs), leaving exactly the round's table.
        code: digest of the calling stage's code, part of each fingerprint.
        on_shard: called with each ShardResult as soon as its shard is done.
        scorer: the ood scorer (`fit_ood_scorer`); fitted here, once a part is to be
            written, if not given.

    A shard whose part already holds the same fingerprint is not computed again.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir}: expected the directory of the round's parts, found a file")
    label_sets = label_sets_for(params, dataset.class_names)
    pool = without_label_columns(dataset.unlabeled(), label_sets)
    if pool.empty:
        raise DataError("infer: the manifest has no unlabeled rows to pseudo-label")
    wanted = range(num_shards) if shard_ids is None else shard_ids
    schema = pseudo_label_schema(pool, multilabel=label_sets is not None)
    teacher_digest = model_digest(model)
    ood = reference_digest(score_kind(params, model), dataset.labeled())
    results = []
    for shard_id in wanted:
        start, end = shard_range(len(pool), shard_id, num_shards)
        rows = pool.iloc[start:end]
        fingerprint = shard_fingerprint(
            teacher_digest, rows, params, teacher_gen, input_size(dataset, params.data), code, ood, label_sets
        )
        path = pseudo_label_part(out_dir, shard_id)
        written = part_fingerprint(path) != fingerprint
        if written:
            scorer = scorer or fit_ood_scorer(model, dataset, params)
            write_part(model, dataset, rows, schema, params, teacher_gen, fingerprint, path, scorer, label_sets)
        result = ShardResult(shard_id=shard_id, rows=end - start, written=written)
        results.append(result)
        if on_shard:
            on_shard(result)
    if shard_ids is None:
        remove_stray_files(out_dir, num_shards)
    return results


def remove_stray_files(out_dir: str | Path, num_shards: int) -> list[Path]:
    """Remove everything in `out_dir` but the parts of shards 0..num_shards-1; return it."""
    out_dir = Path(out_dir)
    keep = {pseudo_label_part(out_dir, i).name for i in range(num_shards)}
    removed = []
    for entry in sorted(out_dir.iterdir()) if out_dir.is_dir() else ():
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry)
    return removed


def val_prediction_table(
    model: nn.Module, dataset: Dataset, params: Params, teacher_gen: int, scorer: OodScorer | None = None
) -> pd.DataFrame:
    """The teacher's unnoised predictions over the val split, as a pseudo-label table plus
    the val truth (`TRUTH_COLUMN`): what refine measures each rule's precision on, and
    the reference scores of `refine.ood.quantile`. A `Calibrated` model gives calibrated
    probabilities, as on the pool; `scorer` is fitted here if not given.

    Multi-label task: the pool's multi-label columns, `TRUTH_COLUMN` all null and the val
    label sets in `TRUE_LABELS_COLUMN` as lists of class names (the canary's form in
    refine's tables)."""
    label_sets = label_sets_for(params, dataset.class_names)
    val = dataset.rows("val")
    rows = without_label_columns(val.drop(columns=["label"]), label_sets)
    probs = np.empty((0, dataset.num_classes), dtype=np.float64)
    ood_score = np.empty(0)
    if not val.empty:
        scorer = scorer or fit_ood_scorer(model, dataset, params)
        probs = np.empty((len(val), dataset.num_classes), dtype=np.float32)
        ood_score = np.empty(len(val))
        for idx, batch_probs, batch_scores in predict_scored(model, dataset, val, params, scorer):
            probs[idx], ood_score[idx] = batch_probs, batch_scores
    table = pseudo_label_table(rows, probs, teacher_gen, ood_score, label_sets)
    table[TRUTH_COLUMN] = pd.array(val["label"].to_numpy(), dtype="Int64")
    if label_sets is not None:
        table[TRUE_LABELS_COLUMN] = pd.Series([split_labels(cell) for cell in val[LABELS_COLUMN]], dtype=object)
    return table

