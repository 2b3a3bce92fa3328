"""Per-epoch training curves logged with DVCLive as each epoch ends, so `dvc plots show` draws them."""

from __future__ import annotations

from pathlib import Path


def _live(out_dir: str | Path):
    from dvclive import Live

    # save_dvc_exp/dvcyaml off: the stage runs under `dvc repro`, whose dvc.yaml
    # declares these plots; DVCLive must not write experiments or dvc.yaml itself.
    # Not resumed: the directory starts empty (DVCLive removes an earlier run's curves).
    return Live(dir=str(out_dir), save_dvc_exp=False, dvcyaml=None, report=None)


def _log(live, record: dict) -> None:
    live.log_metric("train/loss", record["loss"])
    live.log_metric("train/accuracy", record["train_accuracy"])
    live.next_step()


def log_history(history: list[dict], out_dir: str | Path) -> None:
    """Write one DVCLive step per epoch under `out_dir` (plots/metrics/train/*.tsv)."""
    with _live(out_dir) as live:
        for record in history:
            _log(live, record)


class LiveCurves:
    """Curves written epoch by epoch while training runs (readable before it ends).

    A run resumed from a checkpoint reports only the epochs it trains; `close` then
    rewrites the curves from the whole history, so every epoch is in them exactly once.
    """

    def __init__(self, out_dir: str | Path):
        self.out_dir = out_dir
        self._live = _live(out_dir)
        self._epochs: list[int] = []

    def log_epoch(self, record: dict) -> None:
        # Step = epoch - 1 also after a resume, so a curve's x-axis is the epoch.
        self._live.step = record["epoch"] - 1
        _log(self._live, record)
        self._epochs.append(record["epoch"])

    def close(self, history: list[dict]) -> None:
        self._live.end()
        if self._epochs != [record["epoch"] for record in history]:
            log_history(history, self.out_dir)
