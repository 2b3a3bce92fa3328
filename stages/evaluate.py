"""evaluate: a generation's model on the test split (and val), for metrics and plots."""

from selftrain.atomic import write_csv, write_json
from selftrain.config import load_params
from selftrain.data import load_dataset
from selftrain.evaluate import evaluate_model
from selftrain.models import load_model
from stages.common import parser, run


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--gen", type=int, required=True, help="generation k of the model")
    p.add_argument("--manifest", default="data/prepared/manifest.parquet", help="prepared manifest")
    p.add_argument("--model", required=True, help="model directory (models/gen{k})")
    p.add_argument("--metrics", required=True, help="metrics JSON to write")
    p.add_argument("--confusion", required=True, help="confusion rows CSV to write (DVC plot)")
    args = p.parse_args(argv)
    params = load_params(args.params)
    dataset = load_dataset(args.manifest)
    model, header = load_model(args.model, dataset.class_names, params.task)
    metrics, confusion = evaluate_model(model, header, dataset, params)
    write_csv(confusion, args.confusion)
    write_json(metrics, args.metrics)
    print(f"evaluate@{args.gen}: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}")


if __name__ == "__main__":
    run(main)
