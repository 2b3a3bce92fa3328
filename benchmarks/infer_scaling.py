"""Inference and training scaling: peak memory of infer@k vs pool size, inference
throughput with 1 vs 2 shard workers, DDP training epoch time with 1 vs 2 processes.

Every figure comes from the real stage commands, run as subprocesses from the repository
root (PYTHONPATH=repo) on a snapshot of params.yaml (copied into --work at start):

- rss: `python -m stages.infer --gen 1 --manifest M --teacher T --out D --num-shards 1`
  over a synthetic unlabeled pool of each --sizes (10k, 100k). The pool is hard links
  to the 1,797 digits PNGs (`prepare_digits`), one distinct file per row, in a manifest of
  the prepared format (item_id, path, split, label + classes.json). The
  teacher is an untrained gen-0 model of the params' teacher size (inference cost does not
  depend on the weights). Peak RSS is the child's own `ru_maxrss` from `os.wait4`, exact
  for that one process (not sampled). Target: peak(100k) / peak(10k) <= 1.2.
- workers: the largest pool, 1 process (`--num-shards 1`) against 2 processes started
  together (`--shard-id 0|1 --num-shards 2`); images/s = pool rows / wall until the last
  process exits (start-up included). Checks that the two parts read back equal to the one.
- ddp: `python -m stages.train_teacher` on digits with `data.labeled_fraction` --ddp-fraction
  and `distributed.processes` 1 then 2 (2 relaunches itself under torchrun, gloo on CPU).
  Each is run with --ddp-epochs E1 and E2 epochs; seconds per epoch =
  (wall(E2) - wall(E1)) / (E2 - E1), which cancels process, torchrun and DALI start-up.

Results are merged into --out (benchmarks/results/infer_scaling.json) after each part.

Example::

    nice -n 19 python -m benchmarks.infer_scaling --parts rss workers ddp
    python -m benchmarks.infer_scaling --table-only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch
import yaml

from selftrain.config import apply_overrides, load_params, params_from_dict, read_raw_params
from selftrain.data import CLASSES_FILE, IMAGE_SIZE_FILE, prepare_digits
from selftrain.models import create_model, header_for, save_model

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "infer_scaling.json"


def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update(extra or {})
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_many(commands: list[list[str]], log_path: Path, extra_env: dict | None = None) -> dict:
    """Start `commands` together; wall until the last exits and each one's peak RSS (MiB)."""
    started = time.perf_counter()
    with open(log_path, "w") as log:
        procs = [
            subprocess.Popen(cmd, cwd=ROOT, env=_env(extra_env), stdout=log, stderr=subprocess.STDOUT) for cmd in commands
        ]
        peaks, codes = {}, {}
        for proc in procs:
            # wait4 gives this child's own rusage: ru_maxrss (KiB on Linux) is its exact peak RSS.
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            peaks[proc.pid], codes[proc.pid] = usage.ru_maxrss / 1024, proc.returncode
    wall = time.perf_counter() - started
    if any(codes.values()):
        raise RuntimeError(f"a command failed ({codes}); see {log_path}: {commands}")
    return {"wall_s": wall, "peak_rss_mib": [peaks[p.pid] for p in procs]}


def write_params(work: Path, overrides: list[str], name: str) -> Path:
    """The snapshot of params.yaml with `overrides`, as a file a stage reads with --params."""
    raw = apply_overrides(read_raw_params(work / "params.snapshot.yaml"), overrides)
    params_from_dict(raw)  # validate
    path = work / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def build_pool(work: Path, sizes: list[int]) -> dict[int, Path]:
    """Prepared digits, then one manifest per size whose unlabeled rows are hard links."""
    params = load_params(work / "params.snapshot.yaml")
    base = prepare_digits(work / "base" / "prepared", params.data, params.seed)
    sources = base.manifest
    source_paths = base.resolve(sources["path"])
    pool_dir = work / "pool"
    images = pool_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name in (CLASSES_FILE, IMAGE_SIZE_FILE):
        shutil.copy(base.root / name, pool_dir / name)
    largest = max(sizes)
    rel = [f"images/syn-{i:06d}.png" for i in range(largest)]
    for i, path in enumerate(rel):
        target = pool_dir / path
        if not target.exists():
            os.link(source_paths[i % len(source_paths)], target)
    # The non-pool rows of the real split ride along (a prepared manifest has every split).
    others = sources[sources["split"] != "unlabeled"].copy()
    others["path"] = [os.path.relpath(p, pool_dir) for p in base.resolve(others["path"])]
    manifests = {}
    for n in sizes:
        pool = pd.DataFrame(
            {
                "item_id": [f"syn-{i:06d}" for i in range(n)],
                "path": rel[:n],
                "split": "unlabeled",
                "label": pd.array([pd.NA] * n, dtype="Int64"),
            }
        )
        manifest = pd.concat([others, pool], ignore_index=True)
        path = pool_dir / f"manifest_{n}.parquet"
        manifest.to_parquet(path, index=False)
        manifests[n] = path
    # An untrained teacher of the teacher's size.
    torch.manual_seed(0)
    width, depth = params.model_size(0)
    model = create_model(width, depth, params.teacher.dropout, params.teacher.drop_path, base.num_classes)
    save_model(model, header_for(model, params, base, 0), work / "models" / "gen0")
    return manifests


def infer_command(params: Path, manifest: Path, teacher: Path, out: Path, shard: int | None, shards: int) -> list[str]:
    cmd = [
        sys.executable, "-m", "stages.infer", "--params", str(params), "--gen", "1",
        "--manifest", str(manifest), "--teacher", str(teacher), "--out", str(out), "--num-shards", str(shards),
    ]  # fmt: skip
    if shard is not None:
        cmd += ["--shard-id", str(shard)]
    return cmd


def bench_rss(work: Path, manifests: dict[int, Path], repeats: int, log) -> dict:
    params = write_params(work, ["augment.device=cpu"], "params.infer.yaml")
    teacher = work / "models" / "gen0"
    runs = {}
    for n, manifest in sorted(manifests.items()):
        runs[n] = []
        for r in range(repeats):
            out = work / "out" / f"rss_{n}_{r}"
            shutil.rmtree(out, ignore_errors=True)
            result = run_many([infer_command(params, manifest, teacher, out, None, 1)], work / f"log_rss_{n}_{r}.txt")
            rows = len(pd.read_parquet(out, columns=["item_id"]))
            if rows != n:
                raise RuntimeError(f"{out}: {rows} rows, expected {n}")
            result["peak_rss_mib"] = result["peak_rss_mib"][0]
            result["images_per_s"] = n / result["wall_s"]
            runs[n].append(result)
            log(f"  pool {n}: peak RSS {result['peak_rss_mib']:.0f} MiB, {result['wall_s']:.1f} s ({result['images_per_s']:.0f} images/s)")
    small, large = min(runs), max(runs)
    peak = {n: max(r["peak_rss_mib"] for r in rs) for n, rs in runs.items()}
    ratio = peak[large] / peak[small]
    log(f"  peak RSS ratio {large}/{small}: {ratio:.3f}")
    # Start-up cancels in the difference: images/s of the extra rows of the larger pool.
    wall = {n: min(r["wall_s"] for r in rs) for n, rs in runs.items()}
    marginal = (large - small) / (wall[large] - wall[small])
    log(f"  marginal images/s ({large} - {small} rows): {marginal:.0f}")
    return {
        "marginal_images_per_s": marginal,
        "command": " ".join(infer_command(Path("PARAMS"), Path("MANIFEST_N"), Path("TEACHER"), Path("OUT"), None, 1)),
        "runs": {str(n): rs for n, rs in runs.items()},
        "peak_rss_mib": {str(n): v for n, v in peak.items()},
        "ratio": ratio,
        "sizes": [small, large],
    }


def bench_workers(work: Path, manifests: dict[int, Path], repeats: int, log) -> dict:
    params = write_params(work, ["augment.device=cpu"], "params.infer.yaml")
    teacher = work / "models" / "gen0"
    n = max(manifests)
    manifest = manifests[n]
    results = {}
    for workers in (1, 2):
        results[workers] = []
        for r in range(repeats):
            out = work / "out" / f"workers_{workers}_{r}"
            shutil.rmtree(out, ignore_errors=True)
            if workers == 1:
                commands = [infer_command(params, manifest, teacher, out, None, 1)]
            else:
                commands = [infer_command(params, manifest, teacher, out, i, workers) for i in range(workers)]
            result = run_many(commands, work / f"log_workers_{workers}_{r}.txt")
            result["images_per_s"] = n / result["wall_s"]
            results[workers].append(result)
            log(f"  {workers} worker(s), pool {n}: {result['wall_s']:.1f} s, {result['images_per_s']:.0f} images/s")
    one = pd.read_parquet(work / "out" / "workers_1_0", columns=["item_id", "pred"])
    two = pd.read_parquet(work / "out" / "workers_2_0", columns=["item_id", "pred"])
    same = one["item_id"].tolist() == two["item_id"].tolist() and one["pred"].tolist() == two["pred"].tolist()
    log(f"  2-shard table equals the 1-shard table (item_id order and pred): {same}")
    best = {w: max(r["images_per_s"] for r in rs) for w, rs in results.items()}
    return {
        "pool": n,
        "runs": {str(w): rs for w, rs in results.items()},
        "images_per_s": {str(w): v for w, v in best.items()},
        "speedup": best[2] / best[1],
        "two_shards_equal_one": same,
    }


def bench_ddp(work: Path, fraction: float, epochs: tuple[int, int], log, keys: tuple[str, ...] = ("1", "2")) -> dict:
    params = load_params(work / "params.snapshot.yaml")
    overrides = [f"data.labeled_fraction={fraction}", "augment.device=cpu"]
    data_params = params_from_dict(apply_overrides(read_raw_params(work / "params.snapshot.yaml"), overrides))
    dataset = prepare_digits(work / "ddp" / "prepared", data_params.data, data_params.seed)
    n_labeled = int((dataset.manifest["split"] == "labeled").sum())
    batch = params.teacher.batch_size
    results = {}
    # torchrun sets OMP_NUM_THREADS=1 in each rank; "1-omp1" is one process with the same
    # setting, to tell the DDP path from the thread count.
    configs = [("1", 1, None), ("2", 2, None), ("1-omp1", 1, {"OMP_NUM_THREADS": "1"})]
    configs = [c for c in configs if c[0] in keys]
    for key, processes, extra_env in configs:
        walls = {}
        for e in epochs:
            pfile = write_params(
                work, [*overrides, f"distributed.processes={processes}", f"teacher.epochs={e}"], f"params.ddp{processes}.e{e}.yaml"
            )
            cmd = [
                sys.executable, "-m", "stages.train_teacher", "--params", str(pfile),
                "--manifest", str(work / "ddp" / "prepared" / "manifest.parquet"),
                "--out", str(work / "ddp" / f"model_p{processes}_e{e}"),
                "--live-dir", str(work / "ddp" / f"live_p{processes}_e{e}"),
                "--checkpoint", str(work / "ddp" / f"ckpt_p{processes}_e{e}.pt"),
            ]  # fmt: skip
            walls[e] = run_many([cmd], work / f"log_ddp_p{key}_e{e}.txt", extra_env)["wall_s"]
            log(f"  {key} process(es), {e} epochs: {walls[e]:.1f} s")
        rank_batch = math.ceil(batch / processes)
        # Steps per epoch as `fit` computes them: the fewest over the ranks' shards.
        steps = min(
            math.ceil((n_labeled * (r + 1) // processes - n_labeled * r // processes) / rank_batch) for r in range(processes)
        )
        per_epoch = (walls[epochs[1]] - walls[epochs[0]]) / (epochs[1] - epochs[0])
        results[key] = {
            "env": extra_env or {},
            "walls_s": {str(e): w for e, w in walls.items()},
            "s_per_epoch": per_epoch,
            "steps_per_epoch": steps,
            "s_per_step": per_epoch / steps,
            "rank_batch": rank_batch,
        }
        log(f"  {key} process(es): {per_epoch:.2f} s/epoch, {steps} steps/epoch, {per_epoch / steps * 1000:.0f} ms/step")
    return {
        "labeled_rows": n_labeled,
        "fraction": fraction,
        "global_batch": batch,
        "epochs": list(epochs),
        "processes": {str(p): v for p, v in results.items()},
        **({"ratio_2_over_1": results["2"]["s_per_epoch"] / results["1"]["s_per_epoch"]} if {"1", "2"} <= set(results) else {}),
    }


def markdown(results: dict) -> str:
    lines = []
    if "rss" in results:
        r = results["rss"]
        small, large = r["sizes"]
        lines += [
            f"| peak RSS of infer@1, pool {small} vs {large} (target ratio <= 1.2) | "
            f"{r['peak_rss_mib'][str(small)]:.0f} MiB vs {r['peak_rss_mib'][str(large)]:.0f} MiB, ratio {r['ratio']:.3f} |",
            f"| infer images/s, 1 process, marginal over the extra {large - small} rows (start-up cancelled) | "
            f"{r['marginal_images_per_s']:.0f} |",
        ]
    if "workers" in results:
        w = results["workers"]
        lines += [
            f"| infer images/s, pool {w['pool']}, 1 vs 2 shard processes (start-up included) | "
            f"{w['images_per_s']['1']:.0f} vs {w['images_per_s']['2']:.0f} ({w['speedup']:.2f}x; parts equal: {w['two_shards_equal_one']}) |"
        ]
    if "ddp" in results:
        d = results["ddp"]
        p1, p2 = d["processes"]["1"], d["processes"]["2"]
        lines += [
            f"| DDP train_teacher, {d['labeled_rows']} labeled rows, global batch {d['global_batch']}: 1 vs 2 processes | "
            f"{p1['s_per_epoch']:.2f} vs {p2['s_per_epoch']:.2f} s/epoch ({p1['s_per_step'] * 1000:.0f} vs "
            f"{p2['s_per_step'] * 1000:.0f} ms/step; 2/1 = {d['ratio_2_over_1']:.2f}) |"
        ]
    if "ddp_omp1" in results:
        d = results["ddp_omp1"]["processes"]["1-omp1"]
        lines += [
            f"| control: train_teacher, 1 process with OMP_NUM_THREADS=1 (as torchrun sets per rank) | "
            f"{d['s_per_epoch']:.2f} s/epoch ({d['s_per_step'] * 1000:.0f} ms/step) |"
        ]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", nargs="+", choices=["rss", "workers", "ddp", "ddp_omp1"], default=["rss", "workers", "ddp"],
                   help="ddp_omp1: one process with OMP_NUM_THREADS=1, as torchrun sets in each rank (control)")
    p.add_argument("--sizes", type=int, nargs=2, default=[10_000, 100_000], help="pool sizes for the RSS ratio")
    p.add_argument("--repeats", type=int, default=1, help="runs per configuration (max RSS, best images/s)")
    p.add_argument("--ddp-fraction", type=float, default=0.5, help="labeled share for the DDP timing")
    p.add_argument("--ddp-epochs", type=int, nargs=2, default=[2, 22], help="two epoch counts, E1 < E2")
    p.add_argument("--params", default=str(ROOT / "params.yaml"))
    p.add_argument("--work", default="/tmp/bench_infer_scaling", help="scratch directory (pool, models, outputs)")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    if args.table_only:
        print(markdown(results))
        return 0
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.params, work / "params.snapshot.yaml")
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    command = " ".join(["python -m benchmarks.infer_scaling", *(argv if argv is not None else sys.argv[1:])])

    def save(part: str, value: dict) -> None:
        results[part] = {"date": stamp, "command": command, "cpu_count": os.cpu_count(), **value}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))

    if {"rss", "workers"} & set(args.parts):
        t0 = time.perf_counter()
        manifests = build_pool(work, sorted(args.sizes))
        log(f"pool built: {sorted(manifests)} rows ({time.perf_counter() - t0:.0f} s)")
    if "rss" in args.parts:
        log("rss: peak RSS of stages.infer vs pool size")
        save("rss", bench_rss(work, manifests, args.repeats, log))
    if "workers" in args.parts:
        log("workers: 1 vs 2 shard processes")
        save("workers", bench_workers(work, manifests, args.repeats, log))
    if "ddp" in args.parts:
        log("ddp: train_teacher with 1 vs 2 processes")
        save("ddp", bench_ddp(work, args.ddp_fraction, tuple(args.ddp_epochs), log))
    if "ddp_omp1" in args.parts:
        log("ddp_omp1: train_teacher, 1 process, OMP_NUM_THREADS=1")
        save("ddp_omp1", bench_ddp(work, args.ddp_fraction, tuple(args.ddp_epochs), log, keys=("1-omp1",)))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
