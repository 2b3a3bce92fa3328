"""An exponential moving average of a model's weights (the "mean teacher" copy).

The average of the weights over the last few hundred steps generalises better
than the last step's weights, and its predictions on unlabeled images are
steadier; it is what a training stage saves when `ema_decay` is set.
"""

from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    """shadow <- d * shadow + (1 - d) * weights after every step, for every float tensor
    of the state dict (parameters and batch-norm statistics); integer buffers (batch
    counts) are copied.

    The decay warms up as d_t = min(decay, (1 + t) / (10 + t)) for update t = 0, 1, ...,
    so that a short run is not dominated by its random initial weights.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.shadow = {name: value.detach().clone() for name, value in model.state_dict().items()}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        for name, value in model.state_dict().items():
            shadow = self.shadow[name]
            if shadow.dtype.is_floating_point:
                shadow.mul_(decay).add_(value.detach(), alpha=1 - decay)
            else:
                shadow.copy_(value)
        self.updates += 1

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into `model`."""
        model.load_state_dict(self.shadow)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        # A checkpoint is loaded onto the CPU; the average lives where the model does.
        self.shadow = {name: value.to(self.shadow[name].device).clone() for name, value in state["shadow"].items()}


__all__ = ["WeightAverage"]
