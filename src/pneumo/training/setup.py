"""Everything a training run is built from: data, preprocessing spec, model, optimisation."""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np
import pandas as pd
import torch

from pneumo.config import TrainConfig
from pneumo.data import schema
from pneumo.data.prepared import PreparedData
from pneumo.errors import DataError
from pneumo.preprocess import PreprocessSpec, pooled_stats
from pneumo.settings import Settings
from pneumo.training.loader import ShardImages
from pneumo.training.loop import Optimisation

TRAIN_SPLITS = ("train", "val")  # `train` never opens anything else


def target_columns(cfg: TrainConfig, manifest: pd.DataFrame) -> list[str]:
    if cfg.head == "binary":
        return [schema.LABEL]
    if manifest[list(schema.FINDINGS)].isna().any(axis=None):
        raise DataError(
            "train.head=multilabel needs the 14 NIH findings; this dataset does not record them",
            hint="use train.head=binary (Pneumonia) for this dataset",
        )
    return list(schema.FINDINGS)


def preprocess_spec(cfg: TrainConfig, data: PreparedData) -> PreprocessSpec:
    """Normalisation matched to the weights: ImageNet's for pretrained, the train split's else.

    Any weights other than "none" (torchvision's ImageNet files, local or on S3) were trained on
    ImageNet-normalised inputs, so they get ImageNet's gray statistics. ``train.intensity:
    per_image`` standardises each image by itself instead (zero mean, unit std), whatever the
    weights.
    """
    if cfg.intensity == "per_image":
        return PreprocessSpec(data.image_spec, 0.0, 1.0, "per_image")
    if cfg.weights != "none":
        from pneumo.models.architectures import IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD

        return PreprocessSpec(data.image_spec, IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD)
    train = data.manifest[data.manifest[schema.SPLIT] == "train"]
    mean, std = pooled_stats(
        train[schema.MEAN_INTENSITY].to_numpy(np.float64),
        train[schema.STD_INTENSITY].to_numpy(np.float64),
    )
    return PreprocessSpec(data.image_spec, round(mean, 6), round(std, 6))


def datasets(
    data: PreparedData, targets: list[str], settings: Settings, rank: int = 0
) -> tuple[ShardImages, ShardImages]:
    """Train and val images; streamed train shards come through this rank's prefetch folder."""
    digest = hashlib.sha256(data.cache.encode()).hexdigest()[:12]
    # One folder per process: two runs of one dataset on one machine (parallel tune workers,
    # torchrun's ranks) never delete each other's shards.
    folder = settings.stream_folder / digest / f"pid-{os.getpid()}-rank-{rank}"
    train = ShardImages(data.manifest, data.cache, ["train"], targets, settings, folder)
    val = ShardImages(data.manifest, data.cache, ["val"], targets, settings)
    return train, val


class SmoothedBCE(torch.nn.Module):
    """BCE on logits against targets pulled towards 0.5: ``y (1 - s) + s / 2``."""

    def __init__(self, loss: torch.nn.Module, smoothing: float) -> None:
        super().__init__()
        self.loss, self.smoothing = loss, smoothing

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        soft = targets * (1 - self.smoothing) + self.smoothing / 2
        out: torch.Tensor = self.loss(logits, soft)
        return out


def loss_function(
    cfg: TrainConfig, train_targets: torch.Tensor, device: torch.device
) -> torch.nn.Module:
    """BCE on logits; positives weighted by the train split's negative/positive ratio; the
    targets smoothed by ``train.label_smoothing``."""
    loss = torch.nn.BCEWithLogitsLoss()
    if cfg.class_weighting:
        positives = train_targets.sum(dim=0)
        negatives = len(train_targets) - positives
        weight = (negatives / positives.clamp(min=1)).clamp(max=100.0)
        loss = torch.nn.BCEWithLogitsLoss(pos_weight=weight.to(device))
    return SmoothedBCE(loss, cfg.label_smoothing) if cfg.label_smoothing > 0 else loss


def optimisation(
    cfg: TrainConfig, model: torch.nn.Module, steps_per_epoch: int, loss_fn: torch.nn.Module
) -> Optimisation:
    """AdamW with linear warm-up then cosine decay to 1% of the peak, stepped per batch.

    On a GPU the fused AdamW kernel updates every parameter in a few launches instead of
    several per tensor; its state dict is the same, so checkpoints resume either way.
    """
    on_gpu = next(model.parameters()).is_cuda
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=on_gpu or None
    )
    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = min(int(cfg.warmup_epochs * steps_per_epoch), total - 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return Optimisation(optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor), loss_fn)


def configure_backends(device: torch.device) -> None:
    """Let cuDNN pick the fastest convolution for our fixed input size (GPU only).

    Training inputs never change shape, so the one-off autotuning pays back within a few
    steps. It may pick non-deterministic kernels: GPU runs are seeded but not bit-identical.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
