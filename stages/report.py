"""report: the offline HTML report and cross-generation plot data, from the round artifacts."""

from pathlib import Path

from selftrain.config import load_params
from selftrain.paths import ProjectPaths
from selftrain.report.pages import write_report
from selftrain.report.plot_data import write_plot_data
from stages.common import parser, run


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--root", default=".", help="project root holding data/, metrics/")
    p.add_argument("--out", default="reports", help="report directory (replaced whole)")
    p.add_argument("--plots-out", default="plots/loop", help="plot data directory")
    args = p.parse_args(argv)
    paths = ProjectPaths(Path(args.root))
    # The generations params.yaml defines (dvc.yaml declares exactly their files),
    # not whatever rounds an older run left on disk.
    generations = list(range(load_params(args.params).num_generations + 1))
    index = write_report(paths, args.out, generations)
    written = write_plot_data(paths, args.plots_out, generations)
    print(f"report: {index}; plot data: {', '.join(str(w) for w in written)}")


if __name__ == "__main__":
    run(main)
