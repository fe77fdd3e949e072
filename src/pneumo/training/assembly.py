"""What a training run is made of, wired once: data, model, optimiser, loaders, checkpoint meta.

Only the train and val shards are opened (see :func:`pneumo.training.setup.datasets`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from pneumo.config import ExperimentConfig, dump_config
from pneumo.data.prepared import load_prepared
from pneumo.data.sources.datasets import Dataset
from pneumo.models import checkpoint
from pneumo.models.backbones import build_model
from pneumo.models.meta import CheckpointMeta, ModelArgs
from pneumo.settings import Settings
from pneumo.training import distributed, setup
from pneumo.training.averaging import WeightAverage
from pneumo.training.loader import EpochBatches, ShardImages, loader_workers, make_loader
from pneumo.training.loop import Optimisation, StepContext, batches_from
from pneumo.training.shard_stream import ShardPrefetcher, streamed_order, window_of


@dataclass
class Assembly:
    cfg: ExperimentConfig
    dataset: str
    hash: str  # of the prepared manifest
    data_card: dict[str, Any]
    info: distributed.Dist
    targets: list[str]
    train_ds: ShardImages
    model: torch.nn.Module  # the plain module: its state dict is what checkpoints hold
    net: torch.nn.Module  # what steps run: compiled and/or wrapped in DDP
    opt: Optimisation
    ctx: StepContext
    per_rank: int  # training images each rank sees per epoch
    steps: int  # optimizer steps per epoch
    epoch_batches: EpochBatches  # refilled every epoch; the train loader iterates it
    train_loader: torch.utils.data.DataLoader[Any]
    val_loader: torch.utils.data.DataLoader[Any]
    meta: CheckpointMeta  # without a run id until tracking gives one
    stream: ShardPrefetcher | None = None  # the train shards are on object storage
    average: WeightAverage | None = None  # train.ema_decay: what is validated and kept

    @property
    def selected(self) -> torch.nn.Module:
        """The weights validation judges and best.pt keeps: the average, if there is one."""
        return self.average.module if self.average is not None else self.model

    def epoch_order(self, epoch: int) -> np.ndarray:
        """This rank's images of ``epoch``, in order: a seeded global permutation dealt to the
        ranks, or (streamed) shard by shard with windowed shuffling (see shard_stream)."""
        cfg, info = self.cfg.train, self.info
        if self.stream is not None:
            window = window_of(self.stream.keep)
            shards = self.train_ds.shard_of
            return streamed_order(
                shards, cfg.seed, epoch, info.rank, info.world, self.per_rank, window
            )
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
        order = torch.randperm(len(self.train_ds), generator=gen).numpy()
        return order[info.rank : self.per_rank * info.world : info.world]

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()

    def meta_for(self, run_id: str) -> CheckpointMeta:
        return replace(self.meta, run_id=run_id)

    def config_yaml(self) -> str:
        return dump_config(self.cfg)


def _steps_per_epoch(n_train: int, world: int, batch_size: int, cap: int | None) -> int:
    per_rank = n_train // world
    steps = max(1, per_rank // batch_size) if per_rank > batch_size else 1
    return min(steps, cap or steps)


def assemble(
    dataset: Dataset,
    config: ExperimentConfig,
    settings: Settings,
    info: distributed.Dist,
    device: torch.device,
) -> Assembly:
    cfg = config.train
    data = load_prepared(dataset, settings)
    targets = setup.target_columns(cfg, data.manifest)
    train_ds, val_ds = setup.datasets(data, targets, settings, info.rank)
    spec = setup.preprocess_spec(cfg, data)
    args = ModelArgs(cfg.backbone, num_outputs=len(targets), in_chans=1, dropout=cfg.dropout)
    model = build_model(**args.kwargs(), weights=cfg.weights).to(device)
    setup.configure_backends(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    steps = _steps_per_epoch(len(train_ds), info.world, cfg.batch_size, cfg.max_steps_per_epoch)
    loss_fn = setup.loss_function(cfg, train_ds.targets, device)
    opt = setup.optimisation(cfg, model, steps, loss_fn)
    net: torch.nn.Module = torch.compile(model) if cfg.compile else model  # type: ignore[assignment]
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        net = DistributedDataParallel(net, device_ids=ids)
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
    ctx = StepContext(spec, device, bf16, cfg.channels_last, cfg.augment, cfg.seed)
    workers, pin = loader_workers(cfg.workers, info.world), device.type == "cuda"
    val_batches = batches_from(np.arange(len(val_ds)), cfg.batch_size * 2, False)
    epoch_batches = EpochBatches()
    meta = CheckpointMeta(
        run_id="", dataset=dataset.name, manifest_hash=data.card["manifest_hash"], model=args,
        preprocess=spec, head=cfg.head,
        classes=("Pneumonia",) if cfg.head == "binary" else tuple(targets),
        config=config.model_dump(mode="json"), versions=checkpoint.versions(),
    )  # fmt: skip
    return Assembly(
        config, dataset.name, data.card["manifest_hash"], data.card, info, targets, train_ds,
        model, net, opt, ctx, len(train_ds) // info.world, steps, epoch_batches,
        make_loader(train_ds, epoch_batches, workers, pin),
        make_loader(val_ds, val_batches, workers, pin), meta, _prefetcher(train_ds, settings),
        WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None,
    )  # fmt: skip


def _prefetcher(train_ds: ShardImages, settings: Settings) -> ShardPrefetcher | None:
    if not train_ds.streamed or train_ds.local_dir is None:
        return None
    return ShardPrefetcher(
        train_ds.cache_url, train_ds.local_dir, train_ds.shard_names, settings.stream_shards,
        settings,
    )  # fmt: skip
