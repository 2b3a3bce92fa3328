"""select_best: name the generation with the best val accuracy (val mAP in a multilabel run;
a near-tie, within one val item, goes to the later generation), and the run's summary metrics."""

from pathlib import Path

from selftrain.atomic import write_json
from selftrain.config import load_params
from selftrain.gate import best_pointer, summary_metrics
from selftrain.paths import ProjectPaths
from stages.common import parser, run


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--root", default=".", help="project root holding metrics/")
    p.add_argument("--out", default="models/best.json", help="best-model pointer to write")
    p.add_argument(
        "--summary", default="metrics/summary.json", help="summary metrics to write (what `dvc exp show` shows)"
    )
    args = p.parse_args(argv)
    paths = ProjectPaths(Path(args.root))
    # The generations params.yaml defines (0 = teacher), never whatever metrics files
    # are on disk: an older, longer run may have left some behind.
    generations = list(range(load_params(args.params).num_generations + 1))
    pointer = best_pointer(paths, generations)
    write_json(summary_metrics(paths, generations, pointer), args.summary)
    write_json(pointer, args.out)
    name, score = ("val mAP", pointer["val_map"]) if "val_map" in pointer else ("val accuracy", pointer["val_accuracy"])
    print(
        f"select_best: generation {pointer['generation']} ({name} {score:.4f} "
        f"on {pointer['val_size']} val items; within {pointer['tie_tolerance']:.4f} counts as a tie, "
        "won by the later generation)"
    )


if __name__ == "__main__":
    run(main)
