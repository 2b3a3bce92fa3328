"""Speed benchmark: augmentation throughput, input-wait share of training, flow overhead.

Three parts, each selectable with --parts:

- augment: the project's DALI CPU pipeline (`create_loader(..., train=True, noise=True)`)
  against torchvision.transforms.v2 with the same policy (decode, resize, RandAugment with
  `augment.num_ops`/`augment.magnitude` over 31 bins, translation by `augment.crop_padding`,
  no flip, normalise) on the same PNGs, the same image size, batch size and worker count.
  Median images/s over --repeats epochs of each, after one warm-up epoch.
- wait: the share of `fit`'s wall time spent in `next()` on its DALI loaders. The loaders
  are wrapped in a timing proxy here (the library is not instrumented): the benchmark
  replaces `selftrain.train.create_loader` for the duration of the call.
- flow: a real `python -m selftrain_cli run` in a scratch copy of the project
  (--project-copy), then a second, fully cached run. From the flow's own log:
  flow wall (from "Beginning flow run" to the flow's final state) minus the sum of the
  "<stage> ran|cached in X s" lines, as a share of the flow wall.

Example::

    nice -n 19 python -m benchmarks.speed --parts augment wait flow
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from selftrain import train as train_module
from selftrain.augment import MEAN, STD, create_loader
from selftrain.config import Params, load_params
from selftrain.data import DIGITS_IMAGE_SIZE, prepare_digits
from selftrain.train import FitOptions, TrainSet, fit
from selftrain.truth import TRUTH_COLUMN, TRUTH_FILE, read_truth, with_truth
from selftrain.models import create_model

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "speed.json"
PROJECT_FILES = (
    "selftrain", "stages", "flows", "selftrain_cli", "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore", "data/raw",
    "data/corrections.csv", "weights",
)


def _params(path: str) -> Params:
    # Pin the CPU backend: there is no GPU here and the comparison is CPU against CPU.
    params = load_params(path, overrides=["augment.device=cpu"])
    if params.data.image_size == "auto":
        # These benchmarks read digits' PNGs directly, without prepare's record.
        params = dataclasses.replace(params, data=dataclasses.replace(params.data, image_size=DIGITS_IMAGE_SIZE))
    return params


# --- (a) augmentation throughput -------------------------------------------------------


def dali_epoch_rates(paths, params: Params, batch_size: int, repeats: int) -> list[float]:
    loader = create_loader(
        paths,
        image_size=params.data.image_size,
        batch_size=batch_size,
        train=True,
        augment=params.augment,
        noise=True,
        seed=0,
    )
    rates = []
    for epoch in range(repeats + 1):
        started = time.perf_counter()
        n = sum(len(images) for images, _ in loader)
        if epoch:  # epoch 0 warms the pipeline up
            rates.append(n / (time.perf_counter() - started))
    return rates


class _Files(torch.utils.data.Dataset):
    def __init__(self, paths, transform):
        self.paths, self.transform = list(paths), transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from torchvision.io import ImageReadMode, decode_image

        image = decode_image(self.paths[i], mode=ImageReadMode.RGB)  # (3, H, W) uint8
        return self.transform(image), i


def torchvision_transform(params: Params):
    """The DALI training pipeline's policy in torchvision.transforms.v2."""
    from torchvision.transforms import v2

    size = params.data.image_size
    aug = params.augment
    steps = [v2.Resize([size, size], antialias=True)]
    if aug.num_ops:
        steps.append(v2.RandAugment(num_ops=aug.num_ops, magnitude=aug.magnitude, num_magnitude_bins=31, fill=0))
    if aug.crop_padding:
        steps.append(v2.RandomCrop(size, padding=aug.crop_padding, fill=0))
    if aug.flip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [
        v2.ToDtype(torch.float32, scale=False),
        v2.Normalize(mean=list(MEAN), std=list(STD)),
    ]
    return v2.Compose(steps)


def torchvision_epoch_rates(paths, params: Params, batch_size: int, repeats: int) -> list[float]:
    loader = torch.utils.data.DataLoader(
        _Files(paths, torchvision_transform(params)),
        batch_size=batch_size,
        shuffle=True,
        num_workers=params.augment.num_threads,
        persistent_workers=True,
    )
    rates = []
    for epoch in range(repeats + 1):
        started = time.perf_counter()
        n = sum(len(images) for images, _ in loader)
        if epoch:
            rates.append(n / (time.perf_counter() - started))
    return rates


def bench_augment(params: Params, paths, batch_size: int, repeats: int, log) -> dict:
    dali = dali_epoch_rates(paths, params, batch_size, repeats)
    log(f"  DALI CPU: {statistics.median(dali):.0f} images/s ({[round(r) for r in dali]})")
    tv = torchvision_epoch_rates(paths, params, batch_size, repeats)
    log(f"  torchvision v2: {statistics.median(tv):.0f} images/s ({[round(r) for r in tv]})")
    return {
        "images": len(paths),
        "batch_size": batch_size,
        "workers_or_threads": params.augment.num_threads,
        "image_size": params.data.image_size,
        "dali_images_per_s": statistics.median(dali),
        "torchvision_images_per_s": statistics.median(tv),
        "ratio": statistics.median(dali) / statistics.median(tv),
        "dali_epochs": dali,
        "torchvision_epochs": tv,
    }


# --- (b) input-wait share of training --------------------------------------------------


class TimingLoader:
    """Wraps an ImageLoader; adds the time each `next()` takes to `waited`."""

    def __init__(self, loader, clock: dict):
        self._loader, self._clock = loader, clock

    def __len__(self):
        return len(self._loader)

    def __iter__(self):
        iterator = iter(self._loader)
        while True:
            started = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                self._clock["waited"] += time.perf_counter() - started
                return
            self._clock["waited"] += time.perf_counter() - started
            yield batch


def timed_fit(model, labeled: TrainSet, pseudo: TrainSet | None, options: FitOptions) -> dict:
    clock = {"waited": 0.0}
    real = train_module.create_loader

    def timing_create_loader(*args, **kwargs):
        return TimingLoader(real(*args, **kwargs), clock)

    train_module.create_loader = timing_create_loader
    try:
        started = time.perf_counter()
        fit(model, labeled, pseudo, options, "cpu", "speed-benchmark")
        wall = time.perf_counter() - started
    finally:
        train_module.create_loader = real
    return {"wall_s": wall, "waited_s": clock["waited"], "wait_share": clock["waited"] / wall}


def bench_wait(params: Params, dataset, repeats: int, student_epochs: int, log) -> dict:
    """Teacher fit (labeled rows) and a last-generation student fit (labeled + pool)."""
    labeled_rows = dataset.rows("labeled")
    pool = with_truth(dataset.rows("unlabeled"), read_truth(dataset.root / TRUTH_FILE))
    labeled = TrainSet.from_labels(
        dataset.resolve(labeled_rows["path"]), labeled_rows["label"].to_numpy(np.int64), dataset.num_classes
    )
    # Timing only: the pool's true labels stand in for refined pseudo-labels.
    pseudo = TrainSet.from_labels(
        dataset.resolve(pool["path"]), pool[TRUTH_COLUMN].to_numpy(np.int64), dataset.num_classes
    )
    results = {}
    t = params.teacher
    s = params.student
    last = params.num_generations
    width, depth = params.model_size(last)
    cases = {
        "teacher": (
            lambda: create_model(*params.model_size(0), t.dropout, t.drop_path, dataset.num_classes),
            None,
            FitOptions(t.epochs, t.lr, t.batch_size, params.data.image_size, 0, params.optim, params.augment, t.input_noise),
        ),
        f"student gen {last}": (
            lambda: create_model(width, depth, s.dropout, s.drop_path, dataset.num_classes),
            pseudo,
            FitOptions(
                student_epochs, s.lr, s.batch_size, params.data.image_size, 0, params.optim, params.augment,
                s.input_noise, s.batch_ratio,
            ),
        ),
    }
    for name, (make_model, pseudo_set, options) in cases.items():
        runs = [timed_fit(make_model(), labeled, pseudo_set, options) for _ in range(repeats)]
        share = statistics.median(r["wait_share"] for r in runs)
        log(f"  {name}: wait share {share:.1%} of {statistics.median(r['wall_s'] for r in runs):.1f} s ({options.epochs} epochs)")
        results[name] = {
            "epochs": options.epochs,
            "wait_share": share,
            "wall_s": statistics.median(r["wall_s"] for r in runs),
            "runs": runs,
        }
    return results


# --- (c) orchestration overhead ---------------------------------------------------------

STAGE_LINE = re.compile(r"(\d\d:\d\d:\d\d\.\d+).*?\b(\S+) (ran|cached) in ([\d.]+)s")
FLOW_START = re.compile(r"(\d\d:\d\d:\d\d\.\d+).*Beginning flow run")
# Prefect 3's console lines name the run, not the logger: "... | Flow run 'name' - Finished in state ...".
FLOW_END = re.compile(r"(\d\d:\d\d:\d\d\.\d+).*Flow run '[^']*' - Finished in state")
# The first and last stamped lines (temporary server start and stop): the run as the log sees it.
ANY_STAMP = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) \|", re.M)


def _seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def parse_flow_log(text: str) -> dict:
    stages = [(m.group(2), m.group(3), float(m.group(4))) for m in STAGE_LINE.finditer(text)]
    starts = FLOW_START.findall(text)
    ends = FLOW_END.findall(text)
    if not starts or not ends:
        raise RuntimeError("flow log lacks 'Beginning flow run' or the flow's final state line")
    flow_wall = _seconds(ends[-1]) - _seconds(starts[0])
    if flow_wall < 0:  # crossed midnight
        flow_wall += 86_400
    stage_sum = sum(s for _, _, s in stages)
    stamps = ANY_STAMP.findall(text)
    log_span = _seconds(stamps[-1]) - _seconds(stamps[0])
    return {
        "log_span_s": log_span + (86_400 if log_span < 0 else 0),
        "stages": [{"stage": n, "status": st, "seconds": s} for n, st, s in stages],
        "flow_wall_s": flow_wall,
        "stage_sum_s": stage_sum,
        "overhead_s": flow_wall - stage_sum,
        "overhead_share": (flow_wall - stage_sum) / flow_wall,
    }


def _run_flow(project: Path, env: dict, log_path: Path) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "selftrain_cli", "run"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    output = proc.stdout + proc.stderr
    log_path.write_text(output)
    if proc.returncode != 0:
        raise RuntimeError(f"flow run failed (exit {proc.returncode}); log in {log_path}")
    return wall, output


def setup_project(project: Path) -> None:
    """A fresh scratch copy of the project as its own git + DVC repository."""
    if project.exists():
        shutil.rmtree(project)
    project.mkdir(parents=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if not src.exists():
            continue
        if src.is_dir():
            shutil.copytree(src, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, project / name)
    # prepare depends on data.raw_dir, which git ships with a README (git keeps no empty dirs).
    raw = project / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    if not any(raw.iterdir()):
        (raw / "README.md").write_text("Your own images go here; the digits source needs none.\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "benchmark scratch copy"], cwd=project, check=True)


def bench_flow(project: Path, log, reuse_first: bool = False) -> dict:
    """reuse_first: keep the project copy and parse its saved first-run log (process wall
    unknown then) instead of running the first run again; only the cached run is run."""
    if not reuse_first:
        setup_project(project)
    env = dict(os.environ)
    env.update(
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        PYTHONPATH=str(project),
        # Its own Prefect home: the temporary server's database does not touch anyone else's.
        PREFECT_HOME=str(project.parent / (project.name + "-prefect-home")),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        DVC_NO_ANALYTICS="1",
        # Wide, plain console lines: the log is parsed line by line.
        COLUMNS="400",
        PREFECT_LOGGING_COLORS="false",
        # `dvc exp save` commits; the scratch repository has no git identity of its own.
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@localhost",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@localhost",
    )
    env.pop("PREFECT_API_URL", None)
    results = {}
    for name in ("first", "cached"):
        log_path = project.parent / f"{project.name}-{name}.log"
        if name == "first" and reuse_first:
            wall, output = None, log_path.read_text()
        else:
            wall, output = _run_flow(project, env, log_path)
        parsed = parse_flow_log(output)
        parsed["process_wall_s"] = wall
        ran = sum(1 for s in parsed["stages"] if s["status"] == "ran")
        log(
            f"  {name} run: process {wall if wall is None else round(wall, 1)} s, log span {parsed['log_span_s']:.1f} s, flow {parsed['flow_wall_s']:.1f} s, stages "
            f"{parsed['stage_sum_s']:.1f} s ({ran} ran), overhead {parsed['overhead_share']:.1%}"
        )
        results[name] = parsed
    return results


def markdown_tables(results: dict) -> str:
    """The figures of --out as markdown, with the targets they are held against."""
    lines = []
    if "augment" in results:
        a = results["augment"]
        lines += [
            f"Augmentation ({a['images']} PNGs, {a['image_size']} px, batch {a['batch_size']}, "
            f"{a['workers_or_threads']} DALI threads / DataLoader workers, median of {len(a['dali_epochs'])} epochs; {a['date']}):",
            "",
            "| pipeline | images/s |",
            "|---|---|",
            f"| DALI CPU (`create_loader(train=True, noise=True)`) | {a['dali_images_per_s']:.0f} |",
            f"| torchvision.transforms.v2 (same policy) | {a['torchvision_images_per_s']:.0f} |",
            f"| ratio DALI / torchvision (target >= 2x) | {a['ratio']:.2f}x |",
            "",
        ]
    if "wait" in results:
        w = results["wait"]
        lines += [
            f"Input wait during `fit` (median of {len(next(iter(v for k, v in w.items() if k not in ('date', 'command')))['runs'])} fits; {w['date']}):",
            "",
            "| fit | epochs | wall s | share waiting for batches (target <= 20%) |",
            "|---|---|---|---|",
        ]
        for name, v in w.items():
            if name not in ("date", "command"):
                lines.append(f"| {name} | {v['epochs']} | {v['wall_s']:.1f} | {v['wait_share']:.1%} |")
        lines.append("")
    if "flow" in results:
        f = results["flow"]
        lines += [
            f"Flow (`python -m selftrain_cli run` in a scratch copy; {f['date']}):",
            "",
            "| run | process wall s | log span s (server start to stop) | flow wall s (after Prefect start-up) | sum of stages s | overhead s | overhead share (target <= 5%) |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in ("first", "cached"):
            if name in f:
                r = f[name]
                lines.append(
                    f"| {name} | {'-' if r['process_wall_s'] is None else format(r['process_wall_s'], '.1f')} | {r['log_span_s']:.1f} | {r['flow_wall_s']:.1f} | {r['stage_sum_s']:.1f} | "
                    f"{r['overhead_s']:.1f} | {r['overhead_share']:.1%} |"
                )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", nargs="+", choices=["augment", "wait", "flow"], default=["augment", "wait", "flow"], help="what to measure")
    p.add_argument("--params", default=str(ROOT / "params.yaml"), help="params file (image size, augment policy, models)")
    p.add_argument("--repeats", type=int, default=5, help="measured repeats per figure (median reported)")
    p.add_argument("--batch-size", type=int, default=128, help="augmentation batch size (a student batch: 32 + 96)")
    p.add_argument("--student-epochs", type=int, default=3, help="epochs of the timed student fit")
    p.add_argument("--wait-repeats", type=int, default=3, help="repeats of each timed fit")
    p.add_argument("--project-copy", default="/tmp/bench_project", help="scratch copy for the flow run")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="JSON file to merge the results into")
    p.add_argument(
        "--flow-reuse-first",
        action="store_true",
        help="flow: parse the saved first-run log in --project-copy instead of running it again",
    )
    p.add_argument("--table-only", action="store_true", help="print the tables of --out and measure nothing")
    args = p.parse_args(argv)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    out = Path(args.out)
    if args.table_only:
        print(markdown_tables(json.loads(out.read_text())))
        return 0
    params = _params(args.params)
    results = json.loads(out.read_text()) if out.exists() else {}
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(part: str, value: dict) -> None:
        # Merged and written after each part, so a later part failing keeps the earlier figures.
        results[part] = {"date": stamp, "command": " ".join(["python -m benchmarks.speed", *(argv or sys.argv[1:])]), **value}
        out.write_text(json.dumps(results, indent=1))

    with tempfile.TemporaryDirectory(prefix="selftrain-speed-") as tmp:
        if {"augment", "wait"} & set(args.parts):
            dataset = prepare_digits(Path(tmp) / "prepared", params.data, params.seed)
            paths = dataset.resolve(dataset.manifest["path"])
        if "augment" in args.parts:
            log(f"augment: {len(paths)} PNGs, {params.data.image_size}px, batch {args.batch_size}")
            save("augment", bench_augment(params, paths, args.batch_size, args.repeats, log))
        if "wait" in args.parts:
            log("wait: share of fit() wall time in next() on the loaders")
            save("wait", bench_wait(params, dataset, args.wait_repeats, args.student_epochs, log))
    if "flow" in args.parts:
        log(f"flow: python -m selftrain_cli run in {args.project_copy}")
        save("flow", bench_flow(Path(args.project_copy), log, reuse_first=args.flow_reuse_first))
    print(markdown_tables(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
