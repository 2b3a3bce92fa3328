"""Sharded, streamed inference: the parts of a round's table and when they are redone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from conftest import tiny_params
from selftrain.config import DataConfig, params_from_dict
from selftrain.data import prepare_digits
from selftrain.infer import infer_pool, part_fingerprint, shard_range
from selftrain.models import create_model, header_for, load_model, save_model
from selftrain.paths import ProjectPaths, pseudo_label_part
from stages import infer as infer_stage

BATCH = 16


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Prepared digits (pool larger than a batch) and two different teachers."""
    root = tmp_path_factory.mktemp("shards")
    paths = ProjectPaths(root)
    raw = tiny_params()
    raw["infer"]["batch_size"] = BATCH
    raw["augment"]["device"] = "cpu"
    params = params_from_dict(raw)
    dataset = prepare_digits(paths.prepared_dir, DataConfig(subset=200, labeled_fraction=0.2), seed=0)
    for gen, seed in ((0, 0), (1, 1)):
        torch.manual_seed(seed)
        width, depth = params.model_size(gen)
        model = create_model(width, depth, 0.0, 0.0, dataset.num_classes)
        save_model(model, header_for(model, params, dataset, gen), paths.model_dir(gen))
    return paths, params, dataset


def teacher(project, gen=0):
    paths, _, dataset = project
    return load_model(paths.model_dir(gen), dataset.class_names)[0]


def run(project, out_dir, num_shards, shard_ids=None, gen=0):
    _, params, dataset = project
    return infer_pool(
        teacher(project, gen), dataset, params, gen, out_dir, num_shards=num_shards, shard_ids=shard_ids
    )


def test_shard_ranges_tile_the_pool():
    for total in (0, 1, 7, 100):
        for n in (1, 2, 3, 8):
            ranges = [shard_range(total, i, n) for i in range(n)]
            assert ranges[0][0] == 0 and ranges[-1][1] == total
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
            sizes = [end - start for start, end in ranges]
            assert max(sizes) - min(sizes) <= 1


def test_three_shards_equal_one(project, tmp_path):
    _, _, dataset = project
    run(project, tmp_path / "one", 1)
    run(project, tmp_path / "three", 3)
    assert sorted(p.name for p in (tmp_path / "three").iterdir()) == [
        "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"
    ]
    one = pd.read_parquet(tmp_path / "one")
    three = pd.read_parquet(tmp_path / "three")
    # Reading the directory gives pool order (contiguous shards, part names in shard order).
    assert one["item_id"].tolist() == dataset.unlabeled()["item_id"].tolist()
    assert three["item_id"].tolist() == one["item_id"].tolist()
    assert list(three.columns) == list(one.columns)
    assert three["pred"].tolist() == one["pred"].tolist()
    np.testing.assert_allclose(np.stack(three["probs"]), np.stack(one["probs"]), atol=1e-6)
    np.testing.assert_allclose(three["confidence"], one["confidence"], atol=1e-6)
    # Ground truth stays in the truth file: no part carries it.
    assert "true_label" not in three.columns and "true_label" not in one.columns


def test_union_of_shards_covers_every_item_once(project, tmp_path):
    _, _, dataset = project
    out = tmp_path / "parts"
    for shard_id in (2, 0, 3, 1):  # any order, as separate workers would finish
        (result,) = run(project, out, 4, shard_ids=[shard_id])
        assert result.written
    ids = [pd.read_parquet(pseudo_label_part(out, i))["item_id"].tolist() for i in range(4)]
    union = [item for part in ids for item in part]
    pool_ids = dataset.unlabeled()["item_id"].tolist()
    assert len(union) == len(set(union)) == len(pool_ids)
    assert set(union) == set(pool_ids)
    assert pd.read_parquet(out)["item_id"].tolist() == pool_ids


def test_more_shards_than_rows_writes_empty_parts(project, tmp_path):
    _, _, dataset = project
    total = len(dataset.unlabeled())
    n = total + 2
    sizes = [end - start for start, end in (shard_range(total, i, n) for i in range(n))]
    empty_id, full_id = sizes.index(0), sizes.index(1)
    run(project, tmp_path / "many", n, shard_ids=[empty_id, full_id])
    assert pq.read_table(pseudo_label_part(tmp_path / "many", full_id)).num_rows == 1
    empty = pq.read_table(pseudo_label_part(tmp_path / "many", empty_id))
    assert empty.num_rows == 0
    assert empty.schema.field("probs").type.value_type == pa.float64()


def test_written_shard_is_skipped_and_redone_for_another_teacher(project, tmp_path):
    out = tmp_path / "skip"
    assert [r.written for r in run(project, out, 2)] == [True, True]
    part = pseudo_label_part(out, 1)
    before = part.stat().st_mtime_ns, part_fingerprint(part)
    assert [r.written for r in run(project, out, 2)] == [False, False]
    assert (part.stat().st_mtime_ns, part_fingerprint(part)) == before
    # Another teacher (generation 1's weights): every part is stale and redone.
    assert [r.written for r in run(project, out, 2, gen=1)] == [True, True]
    assert part_fingerprint(part) != before[1]
    assert (pd.read_parquet(out)["teacher_gen"] == 1).all()


def test_changed_param_redoes_the_part(project, tmp_path):
    paths, params, dataset = project
    out = tmp_path / "param"
    run(project, out, 1)
    other = params_from_dict({**tiny_params(), "infer": {"batch_size": BATCH * 2}})
    (result,) = infer_pool(teacher(project), dataset, other, 0, out, num_shards=1)
    assert result.written


def test_pool_larger_than_a_batch_is_written_in_row_groups(project, tmp_path):
    _, _, dataset = project
    run(project, tmp_path / "chunks", 1)
    meta = pq.ParquetFile(pseudo_label_part(tmp_path / "chunks", 0)).metadata
    n = len(dataset.unlabeled())
    assert n > 3 * BATCH
    assert meta.num_row_groups == -(-n // BATCH)
    assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) == BATCH


def test_full_run_removes_parts_of_more_shards_and_leftovers(project, tmp_path):
    out = tmp_path / "fewer"
    run(project, out, 3)
    (out / ".part-00000.parquet.abc.tmp").write_bytes(b"interrupted")
    (out / "notes.txt").write_text("not a part")
    # A single-shard run leaves other files alone: other shards may be writing.
    run(project, out, 2, shard_ids=[0])
    assert pseudo_label_part(out, 2).exists()
    run(project, out, 2)
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert len(pd.read_parquet(out)) == len(project[2].unlabeled())


def test_stage_writes_one_shard_then_the_rest(project, tmp_path, capsys):
    paths, params, _ = project
    params_file = tmp_path / "params.yaml"
    raw = tiny_params()
    raw["infer"].update(batch_size=BATCH, num_shards=3)
    import yaml

    params_file.write_text(yaml.safe_dump(raw))
    out = tmp_path / "stage_out"
    common = ["--gen", "1", "--manifest", str(paths.manifest), "--teacher", str(paths.model_dir(0)),
              "--out", str(out), "--params", str(params_file)]
    infer_stage.main([*common, "--shard-id", "1"])
    assert [p.name for p in out.iterdir()] == ["part-00001.parquet"]
    infer_stage.main(common)
    printed = capsys.readouterr().out
    assert "shard 1/3" in printed and "already written by this teacher, kept" in printed
    assert sorted(p.name for p in out.iterdir()) == [f"part-0000{i}.parquet" for i in range(3)]
    with pytest.raises(Exception, match="--shard-id"):
        infer_stage.main([*common, "--shard-id", "3"])


def test_fingerprint_covers_the_preprocessing_code(project, tmp_path, monkeypatch):
    """A part made by other decoding/resizing code (augment.py) is not reused."""
    from selftrain import augment, data, infer, models, prediction
    from selftrain.data import input_size

    assert {augment.__file__, data.__file__, models.__file__, prediction.__file__} <= set(infer.PREPROCESSING_CODE)
    paths, params, dataset = project
    rows = dataset.unlabeled().iloc[:4]
    copy = tmp_path / "augment.py"
    copy.write_text(open(augment.__file__).read())
    monkeypatch.setattr(infer, "PREPROCESSING_CODE", (str(copy), data.__file__, models.__file__))
    size = input_size(dataset, params.data)
    before = infer.shard_fingerprint("teacher", rows, params, 0, size)
    copy.write_text(copy.read_text() + "\n# resize differently\n")
    assert infer.shard_fingerprint("teacher", rows, params, 0, size) != before
