"""The accuracy benchmarks' configurations: the baseline and each ablation, as `-S`-style
overrides of params.yaml (applied with `selftrain.config.apply_overrides`, exactly as
`dvc exp run -S` would), and the supervised-only teacher the gap is measured from."""

from __future__ import annotations

# The supervised-only teacher of the earlier releases (labeled rows only, 100 epochs, no
# weight average): the baseline that "share of the gap closed" is measured from.
SUPERVISED_TEACHER = ("teacher.unlabeled=none", "teacher.ema_decay=0", "teacher.epochs=100")
NOISE_INPUT = ("teacher.input_noise=false", "student.input_noise=false")
NOISE_MODEL = ("student.dropout=0", "student.drop_path=0")
# Name -> overrides. "same_size" is filled in per run (it depends on the generation count).
ABLATIONS: dict[str, tuple[str, ...]] = {
    "no_input_noise": NOISE_INPUT,
    "no_dropout_droppath": NOISE_MODEL,
    "hard_labels": ("refine.soft=false",),
    "no_balance": ("refine.balance.enabled=false",),
    "same_size": (),
    "rules_off": ("refine.rules=[]", "refine.class_thresholds={}"),
    "no_noise_at_all": NOISE_INPUT + NOISE_MODEL,
    # The Noisy Student paper's ablation: the same (noised) teacher, an un-noised student.
    "no_student_noise": ("student.input_noise=false",) + NOISE_MODEL,
    # The learner's parts (issue 15), each switched off (or on) against the defaults.
    "unlabeled_off": SUPERVISED_TEACHER,
    "rotation_teacher": ("teacher.unlabeled=rotation",),
    "ema_off": ("teacher.ema_decay=0", "student.ema_decay=0"),
    "calibration_off": ("calibration.enabled=false",),
    "rampup_off": ("student.pseudo_rampup_epochs=0",),
    "finetune_on": ("student.finetune_epochs=5",),
    "student_consistency": ("student.unlabeled=consistency",),
    # Issue 15 part 8: the temperature's prior. Until the tenth session the default was
    # `auto` (the prior only below data.min_val_items) and `temperature_prior` (0.25 on every
    # val size) the ablation; 0.25 is now the default, so `prior_auto` is the old default.
    "prior_auto": ("calibration.prior_std=auto",),
}
BASELINE = "baseline"
# The ablation name of `benchmarks.accuracy --ceiling-only` records: a ceiling, no run.
CEILING = "ceiling"


def ablation_names(spec: str, baseline: bool) -> list[str]:
    """The configurations `--ablations` names ('none', 'all' or comma-separated), the
    baseline first when `baseline`."""
    if spec == "none":
        names = []
    elif spec == "all":
        names = list(ABLATIONS)
    else:
        names = [n.strip() for n in spec.split(",") if n.strip()]
        unknown = [n for n in names if n not in ABLATIONS]
        if unknown:
            raise ValueError(f"--ablations: unknown {unknown}; choose from {list(ABLATIONS)}")
    return [BASELINE, *names] if baseline else names


def ablation_overrides(name: str, raw: dict, generations: int) -> tuple[str, ...]:
    if name == BASELINE:
        return ()
    if name == "same_size":
        teacher = raw["teacher"]
        return tuple(
            f"generations.{k}.{key}={teacher[key]}"
            for k in range(1, generations + 1)
            for key in ("width", "depth")
        )
    return ABLATIONS[name]
