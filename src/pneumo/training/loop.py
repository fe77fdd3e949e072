"""One training epoch and one prediction pass; no bookkeeping here (see fit.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from pneumo.config import AugmentConfig
from pneumo.errors import PneumoError
from pneumo.training.augment import prepare_batch
from pneumo.transforms import PreprocessSpec


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
    scores: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.seen, 1)


def autocast(ctx: StepContext) -> contextlib.AbstractContextManager[object]:
    if ctx.bf16:
        return torch.autocast(device_type=ctx.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def step_generator(ctx: StepContext, global_step: int) -> torch.Generator:
    """Augmentation randomness for one step: a function of (seed, step) alone, so resumable."""
    gen = torch.Generator(device=ctx.device)
    gen.manual_seed(ctx.seed * 1_000_003 + global_step)
    return gen


def train_epoch(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    loss_fn: torch.nn.Module,
    ctx: StepContext,
    first_step: int,
    total: int,
    on_step: Callable[[int, EpochStats], None],
    desc: str,
    progress: bool,
) -> EpochStats:
    """Train over ``batches``; ``on_step(global_step, stats)`` runs after each optimizer step."""
    model.train()
    stats = EpochStats()
    start = time.perf_counter()
    step = first_step
    with tqdm(total=total, desc=desc, unit="batch", disable=not progress, leave=False) as bar:
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
            loss = loss_fn(logits.float(), y)
            if not torch.isfinite(loss):
                raise PneumoError(
                    f"the training loss became {loss.item()} at step {step}",
                    hint="lower train.lr, try train.precision=fp32, or check the data; "
                    "the last checkpoint before this step is kept for --resume",
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            n = len(y)
            stats.loss_sum += float(loss.detach()) * n
            stats.seen += n
            stats.scores.append(torch.sigmoid(logits.detach().float()).cpu().numpy())
            stats.targets.append(y.cpu().numpy())
            stats.seconds = time.perf_counter() - start
            bar.set_postfix(loss=f"{stats.loss:.4f}", img_s=f"{stats.seen / stats.seconds:.0f}")
            bar.update()
            on_step(step, stats)
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
    scores, targets, loss_sum, seen = [], [], 0.0, 0
    for pixels, target in batches:
        x = prepare_batch(pixels, ctx.spec, None, None, ctx.device, ctx.channels_last)
        with autocast(ctx):
            logits = model(x).float()
        y = target.to(ctx.device)
        if loss_fn is not None:
            loss_sum += float(loss_fn(logits, y)) * len(y)
        seen += len(y)
        scores.append(torch.sigmoid(logits).cpu().numpy())
        targets.append(target.numpy())
    return np.concatenate(scores), np.concatenate(targets), loss_sum / max(seen, 1)


def batches_from(order: np.ndarray, batch_size: int, drop_last: bool) -> list[list[int]]:
    chunks = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if drop_last and len(chunks) > 1 and len(chunks[-1]) < batch_size:
        chunks.pop()
    return chunks
