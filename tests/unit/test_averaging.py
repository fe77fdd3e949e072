"""The weight average (train.ema_decay) and label smoothing (train.label_smoothing)."""

from __future__ import annotations

import pytest
import torch

from pneumo.config import TrainConfig
from pneumo.training.averaging import WeightAverage
from pneumo.training.setup import loss_function


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.bn = torch.nn.BatchNorm2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.bn(self.conv(x))
        return out


def _net() -> Net:
    torch.manual_seed(0)
    return Net()


def _avg(average: WeightAverage) -> Net:
    module = average.module
    assert isinstance(module, Net)
    return module


def test_the_average_follows_the_warmed_up_ema_formula() -> None:
    net = _net()
    average = WeightAverage(net, decay=0.95)
    weights = []
    for step in range(40):
        with torch.no_grad():
            net.conv.weight.add_(torch.randn_like(net.conv.weight))
        net.train()
        net(torch.randn(4, 1, 8, 8))  # moves BatchNorm's running statistics
        weights.append(net.conv.weight.detach().clone())
        average.update(net)
        assert _avg(average).bn.num_batches_tracked == step + 1
    expected = weights[0]
    for t, w in enumerate(weights[1:], start=1):
        d = min(0.95, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * w
    torch.testing.assert_close(_avg(average).conv.weight, expected)
    assert not torch.allclose(_avg(average).conv.weight, net.conv.weight)
    running, current = _avg(average).bn.running_mean, net.bn.running_mean
    assert running is not None and current is not None
    assert not torch.allclose(running, current)  # buffers averaged too


def test_the_average_round_trips_through_its_state() -> None:
    net = _net()
    first = WeightAverage(net, 0.9)
    for _ in range(3):
        with torch.no_grad():
            net.conv.weight.mul_(1.1)
        first.update(net)
    second = WeightAverage(_net(), 0.9)
    second.load_state_dict(first.state_dict())
    for a, b in zip(
        first.module.state_dict().values(), second.module.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b)
    net2 = _net()
    first.update(net2)
    second.update(net2)  # the step count came along: the same next update
    torch.testing.assert_close(_avg(first).conv.weight, _avg(second).conv.weight)


@pytest.mark.parametrize("weighting", [False, True])
def test_label_smoothing_pulls_the_targets_to_one_half(weighting: bool) -> None:
    targets = torch.tensor([[1.0], [0.0], [0.0], [0.0]])
    logits = torch.tensor([[2.0], [-1.0], [0.5], [-3.0]])
    plain = loss_function(TrainConfig(class_weighting=weighting), targets, torch.device("cpu"))
    smooth = loss_function(
        TrainConfig(class_weighting=weighting, label_smoothing=0.2), targets, torch.device("cpu")
    )
    soft = torch.tensor([[0.9], [0.1], [0.1], [0.1]])
    torch.testing.assert_close(smooth(logits, targets), plain(logits, soft))
    assert not torch.allclose(smooth(logits, targets), plain(logits, targets))
