"""prepare: write the embedded dataset's images and the manifest."""

from selftrain.config import load_params
from selftrain.data import prepare_digits
from stages.common import parser, run


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--out-dir", default="data/prepared", help="where images and manifest go")
    args = p.parse_args(argv)
    params = load_params(args.params)
    dataset = prepare_digits(args.out_dir, params.data, params.seed)
    counts = dataset.manifest["split"].value_counts().to_dict()
    print(f"prepare: {len(dataset.manifest)} items, splits {counts}")


if __name__ == "__main__":
    run(main)
