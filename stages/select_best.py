"""select_best: name the generation with the best val accuracy in models/best.json (a
near-tie, within one val item, goes to the later generation)."""

from pathlib import Path

from selftrain.atomic import write_json
from selftrain.gate import best_pointer
from selftrain.paths import ProjectPaths
from stages.common import parser, run


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--root", default=".", help="project root holding metrics/")
    p.add_argument("--out", default="models/best.json", help="best-model pointer to write")
    args = p.parse_args(argv)
    paths = ProjectPaths(Path(args.root))
    # Every generation evaluated so far, 0 (teacher) upwards; a stopped loop has fewer.
    generations = []
    while paths.metrics(len(generations)).exists():
        generations.append(len(generations))
    pointer = best_pointer(paths, generations)
    write_json(pointer, args.out)
    print(
        f"select_best: generation {pointer['generation']} (val accuracy {pointer['val_accuracy']:.4f} "
        f"on {pointer['val_size']} val items; within {pointer['tie_tolerance']:.4f} counts as a tie, "
        "won by the later generation)"
    )


if __name__ == "__main__":
    run(main)
