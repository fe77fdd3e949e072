"""The model, loss and training step can learn: one batch is overfitted."""

from __future__ import annotations

import numpy as np
import torch

from pneumo.config import AugmentConfig
from pneumo.models.backbones import build_model
from pneumo.preprocess import ImageSpec, PreprocessSpec
from pneumo.training.loop import Optimisation, StepContext, train_epoch


def test_overfits_one_batch() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pixels = torch.from_numpy(rng.integers(0, 256, size=(8, 32, 32), dtype=np.uint8))
    target = torch.tensor([[1.0], [0.0]] * 4)
    model = build_model("resnet18", weights="none", num_outputs=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    opt = Optimisation(optimizer, scheduler, torch.nn.BCEWithLogitsLoss())
    ctx = StepContext(
        PreprocessSpec(ImageSpec(size=32), 0.5, 0.29),
        torch.device("cpu"),
        False,
        False,
        AugmentConfig(enabled=False),
    )
    losses = []
    for epoch in range(40):
        stats = train_epoch(model, [(pixels, target)], opt, ctx, first_step=epoch)
        losses.append(stats.loss)
    assert losses[0] > 0.5
    assert losses[-1] < 0.05, losses[-5:]
