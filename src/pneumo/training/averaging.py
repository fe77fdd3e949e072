"""An exponential moving average of the weights (``train.ema_decay``), the model validation
selects and ``best.pt`` holds.

The average of the weights seen over the last ~1/(1 - decay) steps is a flatter, less noisy
point than the last step's weights, known to generalise a little better at no training cost
(Polyak & Juditsky 1992; Izmailov et al. 2018 for SWA, its cousin). BatchNorm's running
statistics are averaged with the weights (``use_buffers``), so the averaged model is used as is,
without a pass to re-estimate them. The decay warms up, ``min(decay, (1 + t) / (10 + t))`` at
step t, so that the first epoch's random weights are forgotten quickly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel


def _warmed(decay: float) -> Any:
    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], step: Any) -> None:
        if not torch.is_floating_point(averaged[0]):  # BatchNorm's batch counters
            torch._foreach_copy_(averaged, current)
            return
        t = int(step)
        d = min(decay, (1 + t) / (10 + t))
        torch._foreach_lerp_(averaged, current, 1 - d)

    return update


class WeightAverage:
    """EMA of ``model``'s parameters and buffers, updated after each optimizer step."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.averaged = AveragedModel(model, multi_avg_fn=_warmed(decay), use_buffers=True)

    @property
    def module(self) -> torch.nn.Module:
        """The averaged network (same class and state-dict keys as the trained one)."""
        module: torch.nn.Module = self.averaged.module
        return module

    def update(self, model: torch.nn.Module) -> None:
        self.averaged.update_parameters(model)

    def state_dict(self) -> dict[str, Any]:
        return dict(self.averaged.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged.load_state_dict(state)
