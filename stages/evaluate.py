"""evaluate: a generation's model on the test split (and val), for metrics and plots."""

from selftrain.atomic import write_csv, write_json
from selftrain.config import load_params
from selftrain.data import load_dataset
from selftrain.evaluate import evaluate_generation
from selftrain.models import load_model
from stages.common import parser, run


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--gen", type=int, required=True, help="generation k of the model")
    p.add_argument("--manifest", default="data/prepared/manifest.parquet", help="prepared manifest")
    p.add_argument("--model", required=True, help="model directory (models/gen{k})")
    p.add_argument("--metrics", required=True, help="metrics JSON to write")
    p.add_argument(
        "--confusion",
        required=True,
        help="confusion rows CSV to write (DVC plot); in a multilabel run one row per (image, class) "
        "true or predicted, '(none)' standing for the missing side",
    )
    p.add_argument(
        "--per-class", default=None, help="per-class AP, F1 and support CSV to write (DVC plot); skipped when absent"
    )
    args = p.parse_args(argv)
    params = load_params(args.params)
    dataset = load_dataset(args.manifest)
    model, header = load_model(args.model, dataset.class_names, params.task)
    evaluation = evaluate_generation(model, header, dataset, params)
    metrics = evaluation.metrics
    write_csv(evaluation.confusion, args.confusion)
    if args.per_class is not None:
        write_csv(evaluation.per_class, args.per_class)
    write_json(metrics, args.metrics)
    if metrics.get("task") == "multilabel":
        print(
            f"evaluate@{args.gen}: mAP {_number(metrics['map'])}, micro-F1 {metrics['micro_f1']:.4f}, "
            f"val mAP {_number(metrics.get('val_map'))}"
        )
    else:
        print(f"evaluate@{args.gen}: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}")


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    run(main)
