"""Throughput benchmark: train and inference images/s and peak RSS per architecture and
image size, on this CPU, through the product's own path (DALI input included).

Each (architecture, size) case runs in a child process of its own (`--case ARCH SIZE`),
so its peak RSS is exact: the child's `ru_maxrss` from `os.wait4`. In the child:

- train: `selftrain.train.fit` (the DALI CPU training pipeline with input noise, SGD,
  the architecture built by `selftrain.architectures.build_model` with the student's
  noise) over --images digits resized to SIZE, for 2 epochs; images/s is the second
  epoch's (the first pays for pipeline start-up and allocator warm-up), timed between
  the two epochs' ends.
- infer: `selftrain.prediction.predict_probs` (the inference pipeline, eval mode, no
  gradients) over the same images at batch --infer-batch, after one warm-up pass.

Example (the lead's full grid; one row of BENCHMARKS.md per case)::

    nice -n 19 python -m benchmarks.throughput --sizes 32 64 128 --images 512 --out OUT.json

A quick check that it works::

    python -m benchmarks.throughput --archs resnet-s3 resnet18 --sizes 32 --images 32 --out /tmp/t.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ("resnet-s3", "resnet18", "mobilenet_v3_small", "efficientnet_b0")
SIZES = (32, 64, 128)
# resnet-s3 at the size the shipped params give the last generation.
RESNET_S3_SIZE = (40, 1)


def run_case(arch: str, size: int, images: int, batch: int, infer_batch: int, threads: int) -> dict:
    """One case, in this process: {train_images_per_s, infer_images_per_s, parameters}."""
    from selftrain.architectures import RESNET_S3, build_model
    from selftrain.config import AugmentConfig, DataConfig, OptimConfig
    from selftrain.data import prepare_digits
    from selftrain.prediction import predict_probs
    from selftrain.models import count_parameters
    from selftrain.train import FitOptions, TrainSet, fit

    torch.set_num_threads(threads)
    work = Path(tempfile.mkdtemp(prefix="throughput_"))
    # Enough digits that half of the training pool (the labeled rows) holds `images`.
    dataset = prepare_digits(work / "prepared", DataConfig(subset=max(3 * images, 200), labeled_fraction=0.7), seed=0)
    rows = dataset.labeled()
    paths = dataset.resolve(rows["path"])[:images]
    labels = rows["label"].to_numpy(np.int64)[: len(paths)]
    width, depth = RESNET_S3_SIZE if arch == RESNET_S3 else (None, None)
    torch.manual_seed(0)
    model, _ = build_model(arch, width, depth, 0.3, 0.2, dataset.num_classes)
    augment = AugmentConfig(num_threads=threads)
    options = FitOptions(
        epochs=2, lr=0.01, batch_size=batch, image_size=size, seed=0,
        optim=OptimConfig(), augment=augment, input_noise=True,
    )  # fmt: skip
    ends: list[tuple[float, int]] = []  # per epoch: when it ended, images it trained on
    fit(model, TrainSet.from_labels(paths, labels, dataset.num_classes), None, options, "cpu", arch,
        on_epoch=lambda record: ends.append((time.perf_counter(), record["images"])))  # fmt: skip
    infer = dict(image_size=size, batch_size=infer_batch, augment=augment, device="cpu")
    model.eval()
    predict_probs(model, paths, **infer)  # warm-up
    start = time.perf_counter()
    predict_probs(model, paths, **infer)
    infer_seconds = time.perf_counter() - start
    return {
        "train_images_per_s": ends[1][1] / (ends[1][0] - ends[0][0]),
        "infer_images_per_s": len(paths) / infer_seconds,
        "parameters": count_parameters(model),
    }


def measure(arch: str, size: int, args) -> dict:
    """Run one case in a child process; its result plus its exact peak RSS (MiB)."""
    command = [
        sys.executable, "-m", "benchmarks.throughput", "--case", arch, str(size),
        "--images", str(args.images), "--batch", str(args.batch),
        "--infer-batch", str(args.infer_batch), "--threads", str(args.threads),
    ]  # fmt: skip
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        out.seek(0)
        err.seek(0)
        text, errors = out.read(), err.read()
    if status != 0:
        raise SystemExit(f"{arch} at {size} px failed (status {status}): {errors[-2000:]}")
    result = json.loads(text.strip().splitlines()[-1])
    # ru_maxrss: KiB on Linux.
    return {"arch": arch, "size": size, **result, "peak_rss_mib": usage.ru_maxrss / 1024, "command": " ".join(command)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", nargs="+", default=list(ARCHS), help="architectures to measure")
    p.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), help="image sides in pixels")
    p.add_argument("--images", type=int, default=512, help="digits images per epoch and per inference pass")
    p.add_argument("--batch", type=int, default=32, help="training batch size")
    p.add_argument("--infer-batch", type=int, default=256, help="inference batch size")
    p.add_argument("--threads", type=int, default=2, help="torch threads and DALI threads per case")
    p.add_argument("--case", nargs=2, metavar=("ARCH", "SIZE"), help="run one case here and print its JSON (internal)")
    p.add_argument("--out", help="JSON file for the records (required unless --case)")
    args = p.parse_args(argv)
    if args.case:
        arch, size = args.case[0], int(args.case[1])
        print(json.dumps(run_case(arch, size, args.images, args.batch, args.infer_batch, args.threads)))
        return
    if not args.out:
        p.error("--out is required")
    rows = []
    for arch in args.archs:
        for size in args.sizes:
            row = measure(arch, size, args)
            print(
                f"{arch:>20} {size:>4} px  train {row['train_images_per_s']:8.1f} img/s  "
                f"infer {row['infer_images_per_s']:8.1f} img/s  peak RSS {row['peak_rss_mib']:7.0f} MiB",
                flush=True,
            )
            rows.append(row)
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "torch": torch.__version__,
        "args": {k: v for k, v in vars(args).items() if k not in ("case", "out")},
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
