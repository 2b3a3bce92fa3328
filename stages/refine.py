"""refine: apply the rules in params.yaml to a round's pseudo-labels."""

from selftrain.atomic import write_json, write_parquet
from selftrain.config import load_params
from selftrain.refine import refine_round
from stages.common import parser, run


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--gen", type=int, required=True, help="round k")
    p.add_argument("--manifest", default="data/prepared/manifest.parquet", help="prepared manifest")
    p.add_argument("--pseudo-labels", required=True, help="this round's pseudo-label table")
    p.add_argument(
        "--previous",
        default=None,
        help="previous round's pseudo-label table, for agreement rules; skipped when absent",
    )
    p.add_argument(
        "--truth",
        default=None,
        help="canary ground truth (data/prepared/truth.parquet), for the rules report's precision only",
    )
    p.add_argument(
        "--val-predictions",
        default=None,
        help="the teacher's val-split predictions (data/gen{k}/val_predictions.parquet): each rule's "
        "precision on val, and refine.min_rule_precision's skips",
    )
    p.add_argument(
        "--corrections",
        default=None,
        help="people's corrections (data/corrections.csv: item_id, label, note), applied before every rule; "
        "a missing file means none",
    )
    p.add_argument("--out", required=True, help="refined table to write")
    p.add_argument("--report", required=True, help="rules report (JSON) to write")
    args = p.parse_args(argv)
    params = load_params(args.params)
    result = refine_round(
        params, args.manifest, args.pseudo_labels, args.previous, args.gen, args.truth, args.val_predictions,
        args.corrections,
    )
    write_parquet(result.table, args.out)
    write_json(result.report, args.report)
    kept = int(result.table["kept"].sum())
    print(f"refine@{args.gen}: kept {kept} of {len(result.table)} pseudo-labels")
    for name in result.report.get("val", {}).get("skipped", []):
        print(f"refine@{args.gen}: rule {name!r} skipped: val precision below refine.min_rule_precision")


if __name__ == "__main__":
    run(main)
