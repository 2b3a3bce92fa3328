"""The weight average (selftrain.ema)."""

from __future__ import annotations

import torch
from torch import nn

from selftrain.ema import WeightAverage


def test_one_update_follows_the_formula():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    average = WeightAverage(model, decay=0.99)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(4, 3))  # changes batch-norm running stats and the batch count
    average.update(model)
    d = min(0.99, 1 / 10)  # warm-up at update 0: (1 + 0) / (10 + 0)
    after = model.state_dict()
    for name, value in after.items():
        if value.dtype.is_floating_point:
            assert torch.allclose(average.shadow[name], d * before[name] + (1 - d) * value), name
        else:
            assert torch.equal(average.shadow[name], value), name


def test_decay_reaches_its_setting_after_warm_up():
    average = WeightAverage(nn.Linear(2, 2), decay=0.9)
    average.updates = 1000
    assert average.current_decay() == 0.9


def test_copy_to_loads_the_average_and_state_round_trips():
    model = nn.Linear(2, 2)
    average = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    average.update(model)
    other = WeightAverage(nn.Linear(2, 2), decay=0.5)
    other.load_state_dict(average.state_dict())
    target = nn.Linear(2, 2)
    other.copy_to(target)
    assert torch.equal(target.weight, average.shadow["weight"])
    assert other.updates == 1
