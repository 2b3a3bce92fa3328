"""Training pieces: the soft-target loss, the student's pseudo-labelled set, a tiny fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from selftrain.config import AugmentConfig, OptimConfig
from selftrain.data import Dataset
from selftrain.errors import TrainingError
from selftrain.models import create_model
from selftrain.losses import soft_cross_entropy
from selftrain.train import FitOptions, TrainSet, fit
from selftrain.trainers import pseudo_train_set


def test_soft_cross_entropy_equals_cross_entropy_on_one_hot():
    logits = torch.randn(6, 4)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    one_hot = F.one_hot(labels, 4).float()
    ours = soft_cross_entropy(logits, one_hot, torch.ones(6))
    assert torch.allclose(ours, F.cross_entropy(logits, labels))


def test_soft_cross_entropy_weights_rows():
    logits = torch.randn(2, 3)
    targets = torch.softmax(torch.randn(2, 3), 1)
    only_first = soft_cross_entropy(logits, targets, torch.tensor([1.0, 0.0]))
    assert torch.allclose(only_first, soft_cross_entropy(logits[:1], targets[:1], torch.ones(1)))


def refined_table(kept, copies):
    n = len(kept)
    return pd.DataFrame(
        {
            "path": [f"images/{i}.png" for i in range(n)],
            "kept": kept,
            "copies": copies,
            "target": [np.eye(3)[i % 3].tolist() for i in range(n)],
            "weight": np.linspace(0.5, 1.0, n),
            "true_label": [2] * n,
        }
    )


def dataset(tmp_path):
    return Dataset(pd.DataFrame(), ("a", "b", "c"), tmp_path)


def test_pseudo_train_set_repeats_kept_rows_by_copies(tmp_path):
    table = refined_table([True, False, True], [2, 0, 1])
    train_set = pseudo_train_set(dataset(tmp_path), table, gen=1)
    assert [p.rsplit("/", 1)[1] for p in train_set.paths] == ["0.png", "0.png", "2.png"]
    assert train_set.targets.shape == (3, 3)
    assert train_set.targets[2].tolist() == [0, 0, 1]
    assert train_set.weights.tolist() == pytest.approx([0.5, 0.5, 1.0])


def test_pseudo_train_set_ignores_truth(tmp_path):
    table = refined_table([True, True, True], [1, 1, 1])
    shuffled = table.assign(true_label=[0, 1, 2])
    a = pseudo_train_set(dataset(tmp_path), table, gen=1)
    b = pseudo_train_set(dataset(tmp_path), shuffled, gen=1)
    assert a.paths == b.paths and np.array_equal(a.targets, b.targets)


def test_nothing_kept_is_a_clear_error(tmp_path):
    table = refined_table([False, False], [0, 0])
    with pytest.raises(TrainingError, match="refine@3 kept no pseudo-labels"):
        pseudo_train_set(dataset(tmp_path), table, gen=3)


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    paths, labels = [], []
    for i in range(24):
        label = i % 2
        img = np.zeros((8, 8), np.uint8)
        # Class 0: bright left half; class 1: bright right half, plus noise.
        img[:, :4] = 220 if label == 0 else 20
        img[:, 4:] = 20 if label == 0 else 220
        img = np.clip(img + rng.integers(0, 30, img.shape), 0, 255).astype(np.uint8)
        path = root / f"{i}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
        labels.append(label)
    return paths, np.array(labels)


def options(**kw):
    base = dict(
        epochs=8, lr=0.05, batch_size=8, image_size=8, seed=0,
        optim=OptimConfig(), augment=AugmentConfig(num_threads=1), input_noise=False,
    )
    base.update(kw)
    return FitOptions(**base)


def test_fit_learns_an_easy_task(tiny_images):
    paths, labels = tiny_images
    model = create_model(8, 1, 0.0, 0.0, 2)
    history = fit(model, TrainSet.from_labels(paths, labels, 2), None, options(), "cpu", "t")
    assert len(history) == 8
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["train_accuracy"] >= 0.9


@pytest.fixture(scope="module")
def gray_images(tmp_path_factory):
    """8 labeled images (bright) and 32 pseudo images (dark), each one flat gray level of
    its own: the mean of an image in a batch says which set and which image it is."""
    from PIL import Image

    root = tmp_path_factory.mktemp("gray")

    def write(name: str, level: int) -> str:
        path = root / f"{name}.png"
        Image.fromarray(np.full((8, 8), level, np.uint8)).save(path)
        return str(path)

    labeled = [write(f"labeled{i}", 160 + 10 * i) for i in range(8)]
    pseudo = [write(f"pseudo{i}", 4 + 4 * i) for i in range(32)]
    return labeled, pseudo


def test_fit_with_pseudo_set_counts_both_parts(gray_images):
    labeled_paths, pseudo_paths = gray_images
    labeled = TrainSet.from_labels(labeled_paths, np.zeros(8, np.int64), 2)
    pseudo = TrainSet.from_labels(pseudo_paths, np.ones(32, np.int64), 2)
    model = create_model(8, 1, 0.0, 0.0, 2)
    batches = []  # per step: the mean of each image of the batch, in batch order
    model.register_forward_pre_hook(lambda module, args: batches.append(args[0].mean(dim=(1, 2, 3)).tolist()))
    history = fit(model, labeled, pseudo, options(epochs=2, batch_size=8, batch_ratio=2.0), "cpu", "s")
    # An epoch is one pass over the 32 pseudo rows, 16 a step (batch_ratio 2 x 8 labeled).
    assert len(history) == 2 and len(batches) == 4
    labeled_means = set()
    for epoch in (batches[:2], batches[2:]):
        pseudo_means = set()
        for step in epoch:
            # 8 labeled rows first, then 16 pseudo rows: bright before dark.
            assert len(step) == 24
            assert min(step[:8]) > max(step[8:])
            labeled_means |= {round(m, 4) for m in step[:8]}
            pseudo_means |= {round(m, 4) for m in step[8:]}
        assert len(pseudo_means) == 32  # every pseudo image once an epoch
    assert len(labeled_means) == 8  # the labeled set cycles beside it


def test_non_finite_loss_names_the_run_and_epoch(tiny_images):
    paths, labels = tiny_images
    model = create_model(8, 1, 0.0, 0.0, 2)
    with pytest.raises(TrainingError, match=r"train_student@2: loss became nan at epoch 1"):
        fit(model, TrainSet.from_labels(paths, labels, 2), None, options(lr=1e30), "cpu", "train_student@2")


@pytest.mark.parametrize("with_pseudo", [False, True], ids=["teacher", "student"])
def test_interrupted_training_resumes_to_the_same_result(tiny_images, tmp_path, with_pseudo):
    paths, labels = tiny_images
    if with_pseudo:
        # The student's epoch is a pass over the pseudo set, the labeled set cycles beside it.
        train_set = TrainSet.from_labels(paths[:10], labels[:10], 2)
        pseudo = TrainSet.from_labels(paths[10:], labels[10:], 2)
    else:
        train_set, pseudo = TrainSet.from_labels(paths, labels, 2), None
    opts = options(epochs=4, input_noise=True, batch_ratio=1.0)
    torch.manual_seed(0)
    reference = create_model(8, 1, 0.2, 0.2, 2)
    initial = {k: v.clone() for k, v in reference.state_dict().items()}
    fit(reference, train_set, pseudo, opts, "cpu", "t")

    class Interrupt(Exception):
        pass

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise Interrupt

    ckpt = tmp_path / "ckpt.pt"
    interrupted = create_model(8, 1, 0.2, 0.2, 2)
    interrupted.load_state_dict(initial)
    with pytest.raises(Interrupt):
        fit(interrupted, train_set, pseudo, opts, "cpu", "t", on_epoch=stop_after_two, checkpoint=ckpt)
    assert ckpt.exists()

    resumed = create_model(8, 1, 0.2, 0.2, 2)
    resumed.load_state_dict(initial)
    epochs_run = []
    history = fit(resumed, train_set, pseudo, opts, "cpu", "t", on_epoch=epochs_run.append, checkpoint=ckpt)
    assert [r["epoch"] for r in epochs_run] == [3, 4]
    assert len(history) == 4
    for key, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_checkpoint_of_another_run_is_not_resumed(tiny_images, tmp_path):
    paths, labels = tiny_images
    train_set = TrainSet.from_labels(paths, labels, 2)
    ckpt = tmp_path / "ckpt.pt"
    fit(create_model(8, 1, 0.0, 0.0, 2), train_set, None, options(epochs=2), "cpu", "a", checkpoint=ckpt)
    epochs_run = []
    fit(create_model(8, 1, 0.0, 0.0, 2), train_set, None, options(epochs=2, lr=0.01), "cpu", "a",
        on_epoch=epochs_run.append, checkpoint=ckpt)
    assert [r["epoch"] for r in epochs_run] == [1, 2]


def test_checkpoint_of_other_starting_weights_is_not_resumed(tiny_images, tmp_path):
    # A run interrupted while training from one set of weights (a weights file, the
    # teacher's) must not be resumed by a run that starts from other weights.
    paths, labels = tiny_images
    train_set = TrainSet.from_labels(paths, labels, 2)
    ckpt = tmp_path / "ckpt.pt"

    class Interrupt(Exception):
        pass

    def stop(record):
        raise Interrupt

    torch.manual_seed(0)
    with pytest.raises(Interrupt):
        fit(create_model(8, 1, 0.0, 0.0, 2), train_set, None, options(epochs=2), "cpu", "a", on_epoch=stop, checkpoint=ckpt)
    torch.manual_seed(1)
    epochs_run = []
    fit(create_model(8, 1, 0.0, 0.0, 2), train_set, None, options(epochs=2), "cpu", "a",
        on_epoch=epochs_run.append, checkpoint=ckpt)  # fmt: skip
    assert [r["epoch"] for r in epochs_run] == [1, 2]


def test_fingerprint_tells_apart_pseudo_sets_of_one_size_and_sum(tiny_images):
    # Two pseudo-label sets with the same row count and target sum (each row sums to 1)
    # but different labels: a checkpoint of one must not resume the other.
    from selftrain.distributed import SINGLE_PROCESS
    from selftrain.checkpoints import run_fingerprint

    paths, labels = tiny_images
    labeled = TrainSet.from_labels(paths[:8], labels[:8], 2)
    a = TrainSet.from_labels(paths[8:], labels[8:], 2)
    b = TrainSet.from_labels(paths[8:], 1 - labels[8:], 2)
    model = create_model(8, 1, 0.0, 0.0, 2)
    opts = options()
    assert run_fingerprint(model, labeled, a, None, opts, "s", SINGLE_PROCESS) != run_fingerprint(
        model, labeled, b, None, opts, "s", SINGLE_PROCESS
    )


@pytest.mark.parametrize("kind", ["consistency", "rotation"])
def test_fit_with_an_unlabeled_loss_records_it(tiny_images, kind):
    from selftrain.train import UnlabeledLoss

    paths, labels = tiny_images
    labeled = TrainSet.from_labels(paths[:8], labels[:8], 2)
    model = create_model(8, 1, 0.0, 0.0, 2)
    opts = options(epochs=2, input_noise=True, unlabeled=UnlabeledLoss(kind, 1.0, 0.0, 1.0), ema_decay=0.9)
    history = fit(model, labeled, None, opts, "cpu", "t", unlabeled=paths[8:])
    # An epoch is a pass over the 16 unlabeled images in batches of 8.
    assert [r["images"] for r in history] == [16, 16]
    # Every unlabeled image once per epoch: both of its views under consistency.
    views = 2 if kind == "consistency" else 1
    assert [r["unlabeled_images"] for r in history] == [16 * views, 16 * views]
    assert all(r["unlabeled_loss"] > 0 for r in history)
    if kind == "consistency":
        # Threshold 0: every weak view is confident enough.
        assert history[0]["unlabeled_mask"] == 1.0


def test_unlabeled_loss_without_images_is_a_clear_error(tiny_images):
    from selftrain.train import UnlabeledLoss

    paths, labels = tiny_images
    opts = options(unlabeled=UnlabeledLoss("consistency"))
    with pytest.raises(TrainingError, match="t: unlabeled loss 'consistency' needs unlabeled images"):
        fit(create_model(8, 1, 0.0, 0.0, 2), TrainSet.from_labels(paths, labels, 2), None, opts, "cpu", "t")


def test_resume_with_weight_average_and_consistency_is_exact(tiny_images, tmp_path):
    from selftrain.train import UnlabeledLoss

    paths, labels = tiny_images
    labeled = TrainSet.from_labels(paths[:8], labels[:8], 2)
    opts = options(epochs=3, input_noise=True, unlabeled=UnlabeledLoss("consistency", 1.0, 0.5, 1.0), ema_decay=0.9)
    torch.manual_seed(0)
    reference = create_model(8, 1, 0.2, 0.2, 2)
    initial = {k: v.clone() for k, v in reference.state_dict().items()}
    fit(reference, labeled, None, opts, "cpu", "t", unlabeled=paths[8:])

    class Interrupt(Exception):
        pass

    def stop_after_one(record):
        if record["epoch"] == 1:
            raise Interrupt

    ckpt = tmp_path / "ckpt.pt"
    interrupted = create_model(8, 1, 0.2, 0.2, 2)
    interrupted.load_state_dict(initial)
    with pytest.raises(Interrupt):
        fit(interrupted, labeled, None, opts, "cpu", "t", on_epoch=stop_after_one, checkpoint=ckpt, unlabeled=paths[8:])
    resumed = create_model(8, 1, 0.2, 0.2, 2)
    resumed.load_state_dict(initial)
    fit(resumed, labeled, None, opts, "cpu", "t", checkpoint=ckpt, unlabeled=paths[8:])
    for key, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_pseudo_rampup_silences_pseudo_rows_in_the_first_step(tiny_images):
    # Pseudo targets that contradict the labels. A linear model (no batch-norm, so rows do
    # not affect each other's outputs) takes one step: with the ramp at 0 the pseudo rows
    # add nothing, and the step equals the step of a run without them; without a ramp it
    # does not.
    paths, labels = tiny_images
    labeled = TrainSet.from_labels(paths[:8], labels[:8], 2)
    wrong = TrainSet.from_labels(paths[8:16], 1 - labels[8:16], 2)

    def one_step(pseudo, rampup):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
        fit(model, labeled, pseudo, options(epochs=1, batch_ratio=1.0, pseudo_rampup_epochs=rampup), "cpu", "s")
        return model[1].weight.detach()

    labeled_only = one_step(None, 0)
    assert torch.allclose(one_step(wrong, 100), labeled_only, atol=1e-6)
    assert not torch.allclose(one_step(wrong, 0), labeled_only, atol=1e-4)
