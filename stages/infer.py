"""infer: the teacher's unnoised predictions over the unlabeled pool, shard by shard.

Without --shard-id it writes every shard of `infer.num_shards` in this process
(skipping parts already written by the same teacher and params) and removes any
other file from --out: that is what `dvc repro` runs. With --shard-id it writes
one part only, so that many machines can share a round (the flow fans them out).
Without --shard-id it also writes the teacher's predictions over the val split to
--val-predictions (refine measures each rule's precision on them).
"""

from selftrain.atomic import write_parquet
from selftrain.config import load_params
from selftrain.data import load_dataset
from selftrain.errors import ConfigError
from selftrain.infer import infer_pool, source_digest, val_prediction_table
from selftrain.models import load_model
from selftrain.prediction import fit_ood_scorer
from stages.common import parser, run


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--gen", type=int, required=True, help="round k: the teacher is model k-1")
    p.add_argument("--manifest", default="data/prepared/manifest.parquet", help="prepared manifest")
    p.add_argument("--teacher", required=True, help="teacher model directory (models/gen{k-1})")
    p.add_argument(
        "--out", required=True, help="directory of the round's table: one part-NNNNN.parquet per shard"
    )
    p.add_argument(
        "--val-predictions",
        default=None,
        help="where to write the teacher's val-split predictions (data/gen{k}/val_predictions.parquet); "
        "written when every shard is run (no --shard-id)",
    )
    p.add_argument(
        "--shard-id",
        type=int,
        default=None,
        help="write only this shard (0-based) and leave other parts alone (default: every shard)",
    )
    p.add_argument(
        "--num-shards",
        type=int,
        default=None,
        help="shards the pool is split into (default: infer.num_shards from the params file)",
    )
    args = p.parse_args(argv)
    params = load_params(args.params)
    num_shards = params.infer.num_shards if args.num_shards is None else args.num_shards
    if num_shards < 1:
        raise ConfigError(f"--num-shards: must be at least 1, got {num_shards}")
    if args.shard_id is not None and not 0 <= args.shard_id < num_shards:
        raise ConfigError(f"--shard-id: must be in [0, {num_shards}), got {args.shard_id}")
    dataset = load_dataset(args.manifest)
    model, header = load_model(args.teacher, dataset.class_names, params.task)
    # Fitted once for the pool and val (a feature score runs the teacher over the labeled rows).
    scorer = fit_ood_scorer(model, dataset, params)

    def report(shard):
        what = "written" if shard.written else "already written by this teacher, kept"
        print(f"infer@{args.gen}: shard {shard.shard_id}/{num_shards}: {shard.rows} rows {what}")

    results = infer_pool(
        model,
        dataset,
        params,
        teacher_gen=header.generation,
        out_dir=args.out,
        num_shards=num_shards,
        shard_ids=None if args.shard_id is None else [args.shard_id],
        code=source_digest(__file__),
        on_shard=report,
        scorer=scorer,
    )
    rows = sum(r.rows for r in results)
    print(f"infer@{args.gen}: {rows} rows in {len(results)} shard(s) from teacher gen {header.generation}")
    if args.val_predictions and args.shard_id is None:
        val = val_prediction_table(model, dataset, params, header.generation, scorer)
        write_parquet(val, args.val_predictions)
        print(f"infer@{args.gen}: {len(val)} val predictions written to {args.val_predictions}")


if __name__ == "__main__":
    run(main)
