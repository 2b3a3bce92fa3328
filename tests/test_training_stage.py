"""The training stages report each epoch as it ends: one line on stdout and one DVCLive step."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from conftest import dvc, make_project, tiny_params
from stages.training import EpochProgress, add_training_flags, checkpoint_path, student_images_per_epoch


class FakeClock:
    def __init__(self, *times: float):
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0)


def record(epoch: int, loss: float = 0.5, accuracy: float = 0.75) -> dict:
    return {"epoch": epoch, "loss": loss, "train_accuracy": accuracy}


def tsv_rows(live_dir, name: str) -> list[list[str]]:
    lines = (live_dir / "plots" / "metrics" / "train" / f"{name}.tsv").read_text().splitlines()
    return [line.split("\t") for line in lines[1:]]


def test_one_line_and_one_curve_step_per_epoch_while_training_runs(tmp_path, capsys):
    live = tmp_path / "dvclive"
    # created at 0, data loaded at 10, epochs end at 20 and 40
    progress = EpochProgress("train_teacher", 3, str(live), is_main=True, clock=FakeClock(0, 10, 20, 40))
    progress.start(images_per_epoch=100)
    progress(record(1, 2.0, 0.25))
    assert capsys.readouterr().out == (
        "train_teacher: epoch 1/3  loss 2.0000  accuracy 0.2500  10 images/s  ETA 0:00:20\n"
    )
    # Readable before training ends: `dvc plots show` draws a running stage's curve.
    assert tsv_rows(live, "loss") == [["0", "2.0"]]
    progress(record(2, 1.0, 0.5))
    # 15 s per epoch on average, the last epoch read 100 images in 20 s
    assert capsys.readouterr().out.endswith("5 images/s  ETA 0:00:15\n")
    assert tsv_rows(live, "accuracy") == [["0", "0.25"], ["1", "0.5"]]


def test_images_per_second_counts_the_unlabeled_views(tmp_path, capsys):
    progress = EpochProgress("train_teacher", 2, str(tmp_path / "dvclive"), is_main=True, clock=FakeClock(0, 0, 10))
    progress.start(images_per_epoch=20)
    # 20 labeled images and 180 unlabeled views in 10 s: the work done, not the labeled rows.
    progress({**record(1), "images": 20, "unlabeled_images": 180})
    assert capsys.readouterr().out.endswith("20 images/s  ETA 0:00:10\n")


def test_resumed_run_averages_its_own_epochs_and_keeps_every_epoch_in_the_curves(tmp_path, capsys):
    live = tmp_path / "dvclive"
    progress = EpochProgress("train_student@1", 4, str(live), is_main=True, clock=FakeClock(0, 0, 30, 60))
    progress.start(images_per_epoch=60)
    progress(record(3))  # epochs 1 and 2 came from the checkpoint
    assert capsys.readouterr().out.endswith("epoch 3/4  loss 0.5000  accuracy 0.7500  2 images/s  ETA 0:00:30\n")
    assert [row[0] for row in tsv_rows(live, "loss")] == ["2"]  # step = epoch - 1
    progress(record(4))
    progress.close([record(1, 4.0), record(2, 3.0), record(3), record(4)])
    assert tsv_rows(live, "loss") == [["0", "4.0"], ["1", "3.0"], ["2", "0.5"], ["3", "0.5"]]


def test_other_ranks_stay_silent(tmp_path, capsys):
    progress = EpochProgress("train_teacher", 2, str(tmp_path / "dvclive"), is_main=False)
    progress.start(images_per_epoch=10)
    progress(record(1))
    progress.close([record(1)])
    assert capsys.readouterr().out == ""
    assert not (tmp_path / "dvclive").exists()


def test_student_epoch_reads_every_pseudo_row_and_a_labeled_batch_per_step():
    # 50 pseudo rows in batches of round(16 * 2.0) = 32: 2 steps, each with 16 labeled rows
    assert student_images_per_epoch(50, 16, 2.0) == 50 + 2 * 16


def test_both_training_stages_take_the_curve_dir_and_a_checkpoint_defaulting_per_generation():
    p = argparse.ArgumentParser()
    add_training_flags(p)
    args = p.parse_args(["--live-dir", "dvclive/gen2"])
    assert checkpoint_path(args.checkpoint, 2) == Path("checkpoints/gen2.pt")
    assert checkpoint_path(p.parse_args(["--live-dir", "d", "--checkpoint", "c.pt"]).checkpoint, 2) == Path("c.pt")
    with pytest.raises(SystemExit):
        p.parse_args([])  # --live-dir is required


@pytest.mark.integration
def test_train_teacher_prints_each_epoch(tmp_path):
    project = make_project(tmp_path / "p", tiny_params())  # teacher: 2 epochs
    dvc(project, "repro", "--single-item", "prepare")
    out = dvc(project, "repro", "--single-item", "train_teacher").stdout
    lines = [line for line in out.splitlines() if line.startswith("train_teacher: epoch ")]
    assert [line.split()[2] for line in lines] == ["1/2", "2/2"], out
    assert all("images/s  ETA " in line for line in lines)
    assert lines[-1].endswith("ETA 0:00:00")
    assert len((project / "dvclive/gen0/plots/metrics/train/loss.tsv").read_text().splitlines()) == 1 + 2


@pytest.mark.integration
def test_imported_teacher_runs_under_dvc_and_is_scored(tmp_path):
    """teacher.epochs 0 + weights: train_teacher imports the file from weights/ (a dep),
    trains no epoch (its curves folder exists, empty) and evaluate@0 scores it."""
    import json

    import torch

    from selftrain.architectures import build_model

    params = tiny_params()
    params["teacher"].update(arch="resnet18", width=None, depth=None, epochs=0, weights="weights/r18.pt")
    params["generations"] = {"1": {"teacher": 0, "arch": "resnet34"}, "2": {"teacher": 1, "arch": "resnet50"}}
    project = make_project(tmp_path / "p", params)
    model, _ = build_model("resnet18", None, None, 0.0, 0.0, 1000)  # an ImageNet-sized head: replaced
    torch.save(model.state_dict(), project / "weights" / "r18.pt")
    out = dvc(project, "repro", "evaluate@0").stdout
    assert "train_teacher: weights from weights/r18.pt" in out
    assert "classifier tensors replaced (fresh): fc.weight, fc.bias" in out
    assert "imported from weights/r18.pt without training" in out
    header = json.loads((project / "models/gen0/model.json").read_text())
    assert (header["architecture"], header["source"]) == ("resnet18", "weights/r18.pt")
    assert header["noise_applied"] == {"dropout": False, "drop_path": True}  # teacher.dropout 0.1, drop_path 0
    metrics = json.loads((project / "metrics/gen0.json").read_text())
    assert metrics["architecture"] == "resnet18" and metrics["noise_applied"] == header["noise_applied"]
    assert (project / "dvclive/gen0/plots/metrics").is_dir()
    assert "Data and pipelines are up to date" in dvc(project, "status", "evaluate@0").stdout
