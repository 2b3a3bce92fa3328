"""train_teacher: generation 0, learned from the labeled rows only."""

import sys
from pathlib import Path

from selftrain.augment import resolve_device
from selftrain.config import load_params
from selftrain.data import load_dataset
from selftrain.distributed import needs_relaunch, process_group, relaunch
from selftrain.models import save_model
from selftrain.paths import ProjectPaths
from selftrain.tracking import log_history
from selftrain.train import train_teacher
from stages.common import parser, run


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--manifest", default="data/prepared/manifest.parquet", help="prepared manifest")
    p.add_argument("--out", default="models/gen0", help="model directory to write")
    p.add_argument("--live-dir", required=True, help="DVCLive directory for per-epoch curves")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="per-epoch state for resuming an interrupted run (default: checkpoints/gen{k}.pt)",
    )
    args = p.parse_args(argv)
    checkpoint = Path(args.checkpoint) if args.checkpoint else ProjectPaths().checkpoint(0)
    params = load_params(args.params)
    if needs_relaunch(params.distributed):
        # N copies of this command under torchrun, one per rank; rank 0 writes the outputs.
        argv = sys.argv[1:] if argv is None else argv
        sys.exit(relaunch("stages.train_teacher", argv, params.distributed.processes))
    dataset = load_dataset(args.manifest)
    with process_group(params.distributed, resolve_device(params.augment.device)) as world:
        model, header, history = train_teacher(dataset, params, checkpoint=checkpoint, world=world)
    if not world.is_main:
        return
    save_model(model, header, args.out)
    log_history(history, args.live_dir)
    checkpoint.unlink(missing_ok=True)
    print(f"train_teacher: {header.num_parameters} parameters, last epoch {history[-1]}")


if __name__ == "__main__":
    run(main)
