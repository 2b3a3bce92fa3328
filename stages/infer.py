"""infer: the teacher's unnoised predictions over the unlabeled pool."""

from selftrain.atomic import write_parquet
from selftrain.config import load_params
from selftrain.data import load_dataset
from selftrain.infer import infer_pool
from selftrain.models import load_model
from stages.common import parser, run


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--gen", type=int, required=True, help="round k: the teacher is model k-1")
    p.add_argument("--manifest", default="data/prepared/manifest.parquet", help="prepared manifest")
    p.add_argument("--teacher", required=True, help="teacher model directory (models/gen{k-1})")
    p.add_argument("--out", required=True, help="pseudo-label table to write")
    args = p.parse_args(argv)
    params = load_params(args.params)
    dataset = load_dataset(args.manifest)
    model, header = load_model(args.teacher, dataset.class_names)
    table = infer_pool(model, dataset, params, teacher_gen=header.generation)
    write_parquet(table, args.out)
    print(f"infer@{args.gen}: {len(table)} rows from teacher gen {header.generation}")


if __name__ == "__main__":
    run(main)
