"""One training epoch and one prediction pass; no bookkeeping here (see fit.py).

A training step waits for the device once, at its end, to read the loss (for the NaN check and
the progress bar) after all of its work is queued; scores stay on the device until the epoch
ends. So the device never idles between a step's forward and backward pass.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from pneumo.config import AugmentConfig
from pneumo.errors import PneumoError
from pneumo.preprocess import PreprocessSpec
from pneumo.training.augment import prepare_batch


@dataclass
class StepContext:
    spec: PreprocessSpec
    device: torch.device
    bf16: bool
    channels_last: bool
    augment: AugmentConfig | None = None
    seed: int = 0


@dataclass
class EpochStats:
    loss_sum: float = 0.0
    seen: int = 0
    scores: list[torch.Tensor] = field(default_factory=list)  # on the training device
    targets: list[torch.Tensor] = field(default_factory=list)  # as the loader gave them
    seconds: float = 0.0

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.seen, 1)

    def arrays(self, outputs: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, targets) of the epoch's images as float arrays of shape (N, outputs)."""
        if not self.scores:
            empty = np.zeros((0, outputs), dtype=np.float32)
            return empty, empty
        scores = torch.cat(self.scores).float().cpu().numpy()
        targets = torch.cat([t.cpu() for t in self.targets]).float().numpy()
        return scores, targets


def autocast(ctx: StepContext) -> contextlib.AbstractContextManager[object]:
    if ctx.bf16:
        return torch.autocast(device_type=ctx.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def step_generator(ctx: StepContext, global_step: int) -> torch.Generator:
    """Augmentation randomness for one step: a function of (seed, step) alone, so resumable."""
    gen = torch.Generator(device=ctx.device)
    gen.manual_seed(ctx.seed * 1_000_003 + global_step)
    return gen


@dataclass
class Optimisation:
    """What a training step updates, and how: optimizer, learning-rate schedule, loss."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loss_fn: torch.nn.Module


@dataclass(frozen=True)
class Bar:
    """A progress bar over ``total`` steps, labelled ``desc``."""

    total: int
    desc: str


def train_epoch(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    opt: Optimisation,
    ctx: StepContext,
    *,
    first_step: int = 0,
    on_step: Callable[[int], None] | None = None,
    bar: Bar | None = None,
) -> EpochStats:
    """Train over ``batches``; ``on_step(global_step)`` runs after each optimizer step."""
    model.train()
    stats = EpochStats()
    start = time.perf_counter()
    step = first_step
    shown = bar or Bar(0, "")
    with tqdm(
        total=shown.total, desc=shown.desc, unit="batch", disable=bar is None, leave=False
    ) as tq:
        for pixels, target in batches:
            x = prepare_batch(
                pixels,
                ctx.spec,
                ctx.augment,
                step_generator(ctx, step),
                ctx.device,
                ctx.channels_last,
            )
            y = target.to(ctx.device, non_blocking=True)
            with autocast(ctx):
                logits = model(x)
            loss = opt.loss_fn(logits.float(), y)
            opt.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            opt.optimizer.step()
            opt.scheduler.step()
            value = loss.item()  # the step's one wait for the device
            if not math.isfinite(value):
                # Raised before on_step, so no checkpoint holds this step's weights.
                raise PneumoError(
                    f"the training loss became {value} at step {step}",
                    hint="lower train.lr, try train.precision=fp32, or check the data; "
                    "the last checkpoint before this step is kept for --resume",
                )
            step += 1
            n = len(y)
            stats.loss_sum += value * n
            stats.seen += n
            stats.scores.append(torch.sigmoid(logits.detach().float()))
            stats.targets.append(target)
            stats.seconds = time.perf_counter() - start
            tq.set_postfix(loss=f"{stats.loss:.4f}", img_s=f"{stats.seen / stats.seconds:.0f}")
            tq.update()
            if on_step is not None:
                on_step(step)
    return stats


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    ctx: StepContext,
    loss_fn: torch.nn.Module | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Probabilities and targets for every image (no augmentation), and the mean loss."""
    model.eval()
    stats = EpochStats()
    loss_sum = torch.zeros((), device=ctx.device)
    for pixels, target in batches:
        x = prepare_batch(pixels, ctx.spec, None, None, ctx.device, ctx.channels_last)
        with autocast(ctx):
            logits = model(x).float()
        if loss_fn is not None:
            loss_sum += loss_fn(logits, target.to(ctx.device, non_blocking=True)) * len(target)
        stats.seen += len(target)
        stats.scores.append(torch.sigmoid(logits))
        stats.targets.append(target)
    scores, targets = stats.arrays(0)
    return scores, targets, float(loss_sum) / max(stats.seen, 1)


def batches_from(order: np.ndarray, batch_size: int, drop_last: bool) -> list[list[int]]:
    chunks = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if drop_last and len(chunks) > 1 and len(chunks[-1]) < batch_size:
        chunks.pop()
    return chunks
