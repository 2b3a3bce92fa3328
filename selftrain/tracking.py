"""Per-epoch training curves logged with DVCLive, so `dvc plots show` draws them."""

from __future__ import annotations

from pathlib import Path


def log_history(history: list[dict], out_dir: str | Path) -> None:
    """Write one DVCLive step per epoch under `out_dir` (plots/metrics/train/*.tsv).

    Logged after training rather than during it, so that a run resumed from a
    checkpoint still writes every epoch exactly once.
    """
    from dvclive import Live

    # save_dvc_exp/dvcyaml off: the stage runs under `dvc repro`, whose dvc.yaml
    # declares these plots; DVCLive must not write experiments or dvc.yaml itself.
    with Live(dir=str(out_dir), save_dvc_exp=False, dvcyaml=None, report=None) as live:
        for record in history:
            live.log_metric("train/loss", record["loss"])
            live.log_metric("train/accuracy", record["train_accuracy"])
            live.next_step()
