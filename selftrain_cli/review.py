"""`selftrain review`: a round's review queue, a filled-in queue appended to the corrections, promotion."""

from __future__ import annotations

import argparse
from pathlib import Path

from selftrain.errors import ConfigError


def add_commands(commands, parents: list[argparse.ArgumentParser]) -> None:
    from selftrain.review.names import DEFAULT_TOP, STRATEGIES

    review = commands.add_parser(
        "review",
        parents=parents,
        help="write round K's review queue (--gen), append a filled-in queue (--apply), promote (--promote)",
    )
    review.add_argument("--gen", type=int, help="round K: write reviews/genK/queue.csv and queue.html")
    review.add_argument("--top", type=int, default=DEFAULT_TOP, help=f"items in the queue (default {DEFAULT_TOP})")
    review.add_argument(
        "--by", choices=STRATEGIES, default="uncertainty",
        help="what to review first: lowest confidence, or smallest min_margin in a multilabel run (uncertainty), "
        "predictions changed since the round before (flips), rows a rule relabelled or dropped "
        "(rule_disagreement), highest ood_score (ood)",
    )  # fmt: skip
    review.add_argument(
        "--apply", metavar="QUEUE_CSV",
        help="append the rows of a queue CSV whose correct_label (correct_labels in a multilabel run) is "
        "filled in to data/corrections.csv",
    )  # fmt: skip
    review.add_argument(
        "--promote", action="store_true",
        help="write corrected labels into the labeled set of your data (manifest or folders; label sets: "
        "manifest only) for the next run",
    )  # fmt: skip
    review.add_argument("--params", default="params.yaml", help="params file, relative to the project (--promote)")
    review.set_defaults(handler=review_command)


def review_command(args: argparse.Namespace) -> int:
    from selftrain.paths import ProjectPaths

    paths = ProjectPaths(Path(args.project_dir))
    given = {"--gen": args.gen is not None, "--apply": bool(args.apply), "--promote": args.promote}
    chosen = [name for name, present in given.items() if present]
    if len(chosen) != 1:
        raise ConfigError(f"review needs exactly one of --gen K, --apply QUEUE_CSV, --promote; got {chosen or 'none'}")
    if args.apply:
        return _apply(paths, Path(args.apply))
    if args.promote:
        return _promote(paths, Path(args.project_dir), args.params)
    return _queue(paths, args.gen, args.by, args.top)


def _queue(paths, gen: int, by: str, top: int) -> int:
    from selftrain.atomic import write_csv, write_text
    from selftrain.review.page import queue_html
    from selftrain.review.queue import round_queue

    queue, _ = round_queue(paths, gen, by, top)
    out = paths.review_dir(gen)
    csv_path, html_path = out / "queue.csv", out / "queue.html"
    write_csv(queue, csv_path)
    write_text(queue_html(queue, f"Review queue, round {gen} (by {by})", paths.prepared_dir, str(csv_path)), html_path)
    print(f"review: {len(queue)} items by {by} -> {csv_path}, {html_path}")
    return 0


def _apply(paths, queue: Path) -> int:
    from selftrain.data import load_dataset
    from selftrain.review.apply import apply_queue

    dataset = load_dataset(paths.manifest)
    added = apply_queue(queue, paths.corrections, dataset.manifest, dataset.class_names)
    print(f"review: appended {added} correction(s) from {queue} to {paths.corrections}")
    return 0


def _promote(paths, root: Path, params_file: str) -> int:
    from selftrain.config import load_params
    from selftrain.data import load_dataset
    from selftrain.refine.corrections import read_corrections
    from selftrain.refine.label_corrections import read_label_corrections
    from selftrain.review.promote import promote

    params = load_params(root / params_file)
    dataset = load_dataset(paths.manifest)
    # A multilabel run's corrections file holds sets: "a|b", "" (the empty set) or drop.
    read = read_label_corrections if dataset.is_multilabel else read_corrections
    corrections = read(paths.corrections, dataset.class_names)
    done = promote(corrections, dataset.manifest, dataset.class_names, params.data, root)
    print(
        f"review: promoted {len(done.written)} item(s) into {done.where}; {len(done.already)} already there; "
        f"{len(done.not_in_pool)} corrected item(s) no longer in the pool"
    )
    return 0
