"""train_student: a noised student on labeled rows plus the round's refined pseudo-labels."""

import sys
from pathlib import Path

import pandas as pd

from selftrain.augment import resolve_device
from selftrain.config import load_params
from selftrain.data import load_dataset
from selftrain.distributed import needs_relaunch, process_group, relaunch
from selftrain.models import save_model
from selftrain.paths import ProjectPaths
from selftrain.tracking import log_history
from selftrain.train import train_student
from stages.common import parser, run


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--gen", type=int, required=True, help="generation k of the student")
    p.add_argument("--manifest", default="data/prepared/manifest.parquet", help="prepared manifest")
    p.add_argument("--refined", required=True, help="this round's refined table")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--live-dir", required=True, help="DVCLive directory for per-epoch curves")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="per-epoch state for resuming an interrupted run (default: checkpoints/gen{k}.pt)",
    )
    args = p.parse_args(argv)
    checkpoint = Path(args.checkpoint) if args.checkpoint else ProjectPaths().checkpoint(args.gen)
    params = load_params(args.params)
    if needs_relaunch(params.distributed):
        # N copies of this command under torchrun, one per rank; rank 0 writes the outputs.
        argv = sys.argv[1:] if argv is None else argv
        sys.exit(relaunch("stages.train_student", argv, params.distributed.processes))
    dataset = load_dataset(args.manifest)
    refined = pd.read_parquet(args.refined)
    with process_group(params.distributed, resolve_device(params.augment.device)) as world:
        model, header, history = train_student(
            dataset, refined, params, args.gen, checkpoint=checkpoint, world=world
        )
    if not world.is_main:
        return
    save_model(model, header, args.out)
    log_history(history, args.live_dir)
    checkpoint.unlink(missing_ok=True)
    print(f"train_student@{args.gen}: {header.num_parameters} parameters, last epoch {history[-1]}")


if __name__ == "__main__":
    run(main)
