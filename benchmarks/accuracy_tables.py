"""The accuracy benchmark's markdown tables, rendered from its records (`benchmarks.records`):
one row per configuration (mean ± std over seeds), and the targets table (best generation by
val, as select_best names it, paired by seed with the baseline)."""

from __future__ import annotations

import statistics

from benchmarks.ablations import ABLATIONS, BASELINE
from selftrain.gate import best_index, tie_tolerance


def command_for(fraction: float, seeds, generations: int, ablation: str) -> str:
    seeds = " ".join(str(s) for s in seeds)
    abl = "none" if ablation == BASELINE else ablation
    return (
        f"OMP_NUM_THREADS=1 nice -n 19 python -m benchmarks.accuracy --fractions {fraction} --seeds {seeds} "
        f"--generations {generations} --ablations {abl}" + ("" if ablation == BASELINE else " --no-baseline")
    )


def mean_std(values: list[float | None], places: int = 2) -> str:
    """Mean ± std in percent of the values that are not None, or "-"."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = statistics.fmean(values) * 100
    std = statistics.stdev(values) * 100 if len(values) > 1 else 0.0
    return f"{mean:.{places}f} ± {std:.{places}f}"


def markdown_table(records: list[dict]) -> str:
    """One row per (fraction, generations, ablation), mean ± std (percent) over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["fraction"], r["num_generations"], r["ablation"]), []).append(r)
    max_gen = max((r["num_generations"] for r in records), default=0)
    head = ["fraction", "ablation (overrides)", "seeds", "teacher"]
    head += [f"gen {k}" for k in range(1, max_gen + 1)]
    head += [f"kept acc gen {k}" for k in range(1, max_gen + 1)]
    head += ["ceiling", "command"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = [BASELINE, *ABLATIONS]
    for key in sorted(groups, key=lambda k: (-k[0], -k[1], order.index(k[2]))):
        rows = sorted(groups[key], key=lambda r: r["seed"])
        fraction, n_gen, ablation = key
        overrides = rows[0]["overrides"]
        label = ablation if not overrides else f"{ablation} (`{' '.join(overrides)}`)"
        cells = [f"{fraction:g} ({rows[0]['labeled_rows']} labels)", label, ",".join(str(r["seed"]) for r in rows)]
        cells.append(mean_std([r["teacher"] for r in rows]))
        for k in range(1, max_gen + 1):
            cells.append(mean_std([r["generations"][k - 1]["test_accuracy"] for r in rows if k <= n_gen]))
        for k in range(1, max_gen + 1):
            cells.append(mean_std([r["generations"][k - 1]["pseudo_accuracy_after"] for r in rows if k <= n_gen]))
        cells.append(mean_std([r.get("ceiling") for r in rows]))
        cells.append(f"`{command_for(fraction, [r['seed'] for r in rows], n_gen, ablation)}`")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def best_by_val(record: dict, upto: int | None = None) -> tuple[int, float]:
    """(generation, test accuracy) that select_best would name: the product's `best_index`
    over the val accuracies of the teacher and generations 1..upto, a near-tie (one val
    item, `tie_tolerance` of the recorded val size) going to the later generation.

    Records written before the teacher's val accuracy (or the val size) was kept leave the
    teacher out (or count only exact ties).
    """
    candidates = [(0, record["teacher_val"], record["teacher"])] if record.get("teacher_val") is not None else []
    candidates += [(g["gen"], g["val_accuracy"], g["test_accuracy"]) for g in record["generations"][:upto]]
    best = best_index([val or 0.0 for _, val, _ in candidates], tie_tolerance(record.get("val_size")))
    gen, _, test = candidates[best]
    return gen, test


def targets_table(records: list[dict]) -> str:
    """Per fraction (baseline rows): best generation by val vs the teacher and the ceiling,
    and per ablation the gain over its own teacher next to the baseline's on the same seeds."""
    lines = [
        "| fraction | seeds | teacher | best gen by val (test acc) | gain (paired) | outside the seed spread? | share of teacher→ceiling gap closed |",
        "|---|---|---|---|---|---|---|",
    ]
    base = [r for r in records if r["ablation"] == BASELINE]
    for fraction in sorted({r["fraction"] for r in base}, reverse=True):
        rows = sorted((r for r in base if r["fraction"] == fraction), key=lambda r: r["seed"])
        teacher = [r["teacher"] for r in rows]
        best = [best_by_val(r)[1] for r in rows]
        gains = [b - t for b, t in zip(best, teacher)]
        closed = [(b - t) / (r["ceiling"] - t) for b, t, r in zip(best, teacher, rows) if r.get("ceiling")]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        # Outside the spread: the intervals mean ± std of teacher and best gen do not overlap.
        outside = statistics.fmean(best) - sd(best) > statistics.fmean(teacher) + sd(teacher)
        every_seed = all(g > 0 for g in gains)
        lines.append(
            f"| {fraction:g} | {','.join(str(r['seed']) for r in rows)} | {mean_std(teacher)} | {mean_std(best)} | "
            f"{mean_std(gains)} | {'yes' if outside else 'no'} (gain > 0 on {'every' if every_seed else 'not every'} seed) | "
            + (f"{statistics.fmean(closed) * 100:.0f}% (per seed: {', '.join(f'{c * 100:.0f}%' for c in closed)}) |" if closed else "- (no ceiling) |")
        )
    ablated = [r for r in records if r["ablation"] != BASELINE]
    if ablated:
        lines += [
            "",
            "| ablation | fraction | seeds | gens | gain of best gen by val over its teacher | baseline's gain (same seeds, first gens) | share of the gain kept | best gen minus the baseline's (paired) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        groups: dict[tuple, list[dict]] = {}
        for r in ablated:
            groups.setdefault((r["ablation"], r["fraction"], r["num_generations"]), []).append(r)
        order = list(ABLATIONS)
        for (name, fraction, n_gen), rows in sorted(groups.items(), key=lambda kv: order.index(kv[0][0])):
            rows.sort(key=lambda r: r["seed"])
            gains = [best_by_val(r)[1] - r["teacher"] for r in rows]
            # The baseline run of each of these seeds, judged on the ablation's first n_gen gens.
            base_of_seed = {
                b["seed"]: b for b in base
                if b["fraction"] == fraction and b["num_generations"] >= n_gen and b["seed"] in {r["seed"] for r in rows}
            }
            base_best = {seed: best_by_val(b, n_gen)[1] for seed, b in base_of_seed.items()}
            base_gains = [base_best[seed] - b["teacher"] for seed, b in base_of_seed.items()]
            # Same seed, ablation's best generation against the baseline's: negative = it hurts.
            versus = [best_by_val(r)[1] - base_best[r["seed"]] for r in rows if r["seed"] in base_best]
            kept = (
                f"{statistics.fmean(gains) / statistics.fmean(base_gains) * 100:.0f}%"
                if base_gains and statistics.fmean(base_gains) > 0 else "-"
            )
            lines.append(
                f"| {name} | {fraction:g} | {','.join(str(r['seed']) for r in rows)} | {n_gen} | {mean_std(gains)} | "
                f"{mean_std(base_gains)} | {kept} | {mean_std(versus)} |"
            )
    return "\n".join(lines)
