"""Tables of the learner benchmark (issue 15) from `benchmarks.accuracy` records.

The gap is measured from the supervised-only teacher of the earlier releases
(`record["supervised"]`, labeled rows only) to the all-labels ceiling; the best
generation is chosen by val accuracy among generations 0..N, as `select_best` does.

    python -m benchmarks.learner_tables benchmarks/results/learner.json --ceilings benchmarks/results/accuracy.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from benchmarks.ablations import BASELINE, CEILING
from benchmarks.accuracy_tables import best_by_val, mean_std


def attach_ceilings(records: list[dict], reference: list[dict]) -> None:
    """Give records without a ceiling the ceiling of the reference run of the same
    fraction and seed (the ceiling does not depend on the learner's settings)."""
    ceilings = {(r["fraction"], r["seed"]): r["ceiling"] for r in reference if r.get("ceiling") is not None}
    for record in records:
        if record.get("ceiling") is None and (record["fraction"], record["seed"]) in ceilings:
            record["ceiling"] = ceilings[(record["fraction"], record["seed"])]


def split_ceilings(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """(runs, ceiling-only records): a merged records file may hold both."""
    return [r for r in records if r["ablation"] != CEILING], [r for r in records if r["ablation"] == CEILING]


def gap_table(records: list[dict]) -> str:
    lines = [
        "| fraction | seed | supervised-only teacher (baseline) | new gen 0 | best gen by val | its test acc | ceiling | share of the gap closed | best gen − new gen 0 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = [r for r in records if r["ablation"] == BASELINE and r.get("supervised") is not None]
    for fraction in sorted({r["fraction"] for r in base}, reverse=True):
        rows = sorted((r for r in base if r["fraction"] == fraction), key=lambda r: r["seed"])
        shares, lifts = [], []
        for r in rows:
            gen, best = best_by_val(r)
            share = (best - r["supervised"]) / (r["ceiling"] - r["supervised"]) if r.get("ceiling") else None
            lift = best - r["teacher"]
            if share is not None:
                shares.append(share)
            lifts.append(lift)
            lines.append(
                f"| {fraction:g} | {r['seed']} | {r['supervised'] * 100:.2f} | {r['teacher'] * 100:.2f} | {gen} | "
                f"{best * 100:.2f} | {r['ceiling'] * 100 if r.get('ceiling') else float('nan'):.2f} | "
                f"{'-' if share is None else f'{share * 100:.0f}%'} | {lift * 100:+.2f} |"
            )
        best_all = [best_by_val(r)[1] for r in rows]
        lines.append(
            f"| {fraction:g} | mean of {len(rows)} | {mean_std([r['supervised'] for r in rows])} | "
            f"{mean_std([r['teacher'] for r in rows])} | | {mean_std(best_all)} | {mean_std([r.get('ceiling') for r in rows])} | "
            f"{statistics.fmean(shares) * 100:.0f}% | {statistics.fmean(lifts) * 100:+.2f} |"
            if shares else f"| {fraction:g} | mean | | | | {mean_std(best_all)} | | - | |"
        )
    return "\n".join(lines)


def ablation_table(records: list[dict]) -> str:
    """Per ablation: best gen by val, paired against the defaults' run of the same seed."""
    lines = [
        "| ablation (overrides) | fraction | seeds | gen 0 | best gen by val | best minus the defaults' (paired) | seeds where lower |",
        "|---|---|---|---|---|---|---|",
    ]
    base = {(r["fraction"], r["seed"]): r for r in records if r["ablation"] == BASELINE}
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if r["ablation"] != BASELINE:
            groups.setdefault((r["ablation"], r["fraction"]), []).append(r)
    for (name, fraction), rows in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        rows.sort(key=lambda r: r["seed"])
        paired = [best_by_val(r)[1] - best_by_val(base[(fraction, r["seed"])])[1] for r in rows if (fraction, r["seed"]) in base]
        lines.append(
            f"| {name} (`{' '.join(rows[0]['overrides'])}`) | {fraction:g} | {','.join(str(r['seed']) for r in rows)} | "
            f"{mean_std([r['teacher'] for r in rows])} | {mean_std([best_by_val(r)[1] for r in rows])} | {mean_std(paired)} | "
            f"{sum(p < 0 for p in paired)} of {len(paired)} |"
        )
    return "\n".join(lines)


def calibration_table(records: list[dict]) -> str:
    """Test ECE (15 bins) before and after temperature scaling, per generation, defaults only,
    beside the ECE a perfectly calibrated model with the fitted confidences reads on the same
    test rows (`ece_floor`; "-" for records written before it was recorded)."""
    lines = [
        "| fraction | generation | temperature | test ECE before | test ECE after | after ≤ half of before? "
        "| a calibrated model reads | test NLL before | after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = [r for r in records if r["ablation"] == BASELINE and "teacher_calibration" in r]
    for fraction in sorted({r["fraction"] for r in base}, reverse=True):
        rows = [r for r in base if r["fraction"] == fraction]
        n_gen = min(len(r["generations"]) for r in rows)
        for gen in range(n_gen + 1):
            cal = [r["teacher_calibration"] if gen == 0 else r["generations"][gen - 1]["calibration"] for r in rows]
            mean = lambda key: statistics.fmean(c[key] for c in cal)  # noqa: E731
            halved = sum(c["ece_after"] <= c["ece_before"] / 2 for c in cal)
            floors = [c["ece_floor"] for c in cal if "ece_floor" in c]
            floor = f"{statistics.fmean(floors) * 100:.2f}%" if len(floors) == len(cal) else "-"
            lines.append(
                f"| {fraction:g} | {gen} | {mean('temperature'):.2f} | {mean('ece_before') * 100:.2f}% | "
                f"{mean('ece_after') * 100:.2f}% | {'yes' if mean('ece_after') <= mean('ece_before') / 2 else 'no'} "
                f"({halved} of {len(cal)} seeds) | {floor} | {mean('nll_before'):.3f} | {mean('nll_after'):.3f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("records", help="JSON records written by benchmarks.accuracy --out")
    p.add_argument("--ceilings", help="earlier records whose ceilings fill in runs without one")
    args = p.parse_args(argv)
    records, ceilings = split_ceilings(json.loads(Path(args.records).read_text()))
    if args.ceilings:
        ceilings += json.loads(Path(args.ceilings).read_text())  # later entries win
    attach_ceilings(records, ceilings)
    print(gap_table(records), ablation_table(records), calibration_table(records), sep="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
