"""`selftrain refine --dry-run`: preview a round's refinement with other rules; writes nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from selftrain.errors import ConfigError


def add_commands(commands, parents: list[argparse.ArgumentParser]) -> None:
    refine = commands.add_parser(
        "refine", parents=parents, help="preview round K's refinement: per-rule table, class counts"
    )
    refine.add_argument("--gen", type=int, required=True, help="round K (its pseudo-labels must exist)")
    refine.add_argument("--dry-run", action="store_true", help="print the rules report; write nothing")
    refine.add_argument("--params", default="params.yaml", help="params file, relative to the project")
    refine.add_argument(
        "-S", "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a param for this preview, e.g. -S refine.rules[0].when.value=0.8 (repeatable)",
    )  # fmt: skip
    refine.add_argument("--rules-file", help="YAML mapping whose keys replace the refine section's")
    refine.set_defaults(handler=preview)


def preview(args: argparse.Namespace) -> int:
    import yaml

    from selftrain.config import apply_overrides, params_from_dict, read_raw_params
    from selftrain.paths import ProjectPaths
    from selftrain.refine import format_label_report, format_report, refine_round

    if not args.dry_run:
        raise ConfigError("selftrain refine only previews (--dry-run); `dvc repro refine@K` writes")
    root = Path(args.project_dir)
    paths = ProjectPaths(root)
    raw = apply_overrides(read_raw_params(root / args.params), args.set)
    if args.rules_file:
        # The file's keys replace those of the refine section (e.g. a new `rules:` list).
        section = yaml.safe_load(Path(args.rules_file).read_text())
        if not isinstance(section, dict):
            raise ConfigError(f"{args.rules_file}: expected a mapping of refine keys")
        raw["refine"] = {**raw.get("refine", {}), **section}
    params = params_from_dict(raw)
    val_predictions = paths.val_predictions(args.gen)
    result = refine_round(
        params, paths.manifest, paths.pseudo_labels(args.gen), paths.pseudo_labels(args.gen - 1), args.gen,
        paths.truth, val_predictions if val_predictions.exists() else None, paths.corrections,
    )
    multilabel = result.report.get("task") == "multilabel"
    print(format_label_report(result.report) if multilabel else format_report(result.report))
    return 0
