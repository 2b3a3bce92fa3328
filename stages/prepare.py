"""prepare: build the manifest, the canary truth file and the shift check (stats.json) from data.source (embedded digits, folders, or a manifest file)."""

import sys

from selftrain.config import load_params
from selftrain.sources import SKIPPED_FILE, prepare_source, small_val_warning
from selftrain.sources.stats import write_stats
from stages.common import parser, run


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--out-dir", default="data/prepared", help="where the manifest, the truth file (and digits' images) go")
    args = p.parse_args(argv)
    params = load_params(args.params)
    prepared = prepare_source(args.out_dir, params.data, params.seed, task=params.task)
    counts = prepared.dataset.manifest["split"].value_counts().to_dict()
    print(f"prepare: {len(prepared.dataset.manifest)} items, splits {counts}")
    stats = write_stats(prepared.dataset, args.out_dir, params.seed)
    print(f"prepare: pixel and size statistics per split (shift check) in {stats}")
    warning = small_val_warning(prepared.dataset, params.data)
    if warning:
        print(warning, file=sys.stderr)
    if prepared.skipped:
        print(f"prepare: skipped {prepared.skipped} unreadable unlabeled image(s); see {args.out_dir}/{SKIPPED_FILE}")


if __name__ == "__main__":
    run(main)
