"""`pneumo train`: wire data, model and optimiser; early-stop and select on validation only.

The test split is never opened here: the datasets are built from the train and val shards only.
Rank 0 writes ``last.pt`` every ``train.checkpoint_every`` steps and at each epoch end (for
``--resume``), ``best.pt`` when validation AUROC improves, and the history; all of it is logged
to MLflow.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from pneumo import storage
from pneumo.config import ExperimentConfig, dump_config
from pneumo.data.prepared import load_prepared
from pneumo.data.sources.datasets import Dataset
from pneumo.errors import PneumoError
from pneumo.metrics.curves import roc_auc
from pneumo.metrics.threshold import choose_threshold
from pneumo.models import checkpoint
from pneumo.models.backbones import build_model
from pneumo.settings import Settings, get_settings
from pneumo.training import distributed, setup
from pneumo.training.history import history_png
from pneumo.training.loader import EpochBatches, loader_workers, make_loader
from pneumo.training.loop import StepContext, batches_from, predict, train_epoch

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """What `last.pt` remembers besides weights and optimiser."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_auroc: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    run_dir: str
    best: str
    best_epoch: int
    best_val_auroc: float
    epochs_run: int
    stopped_early: bool


def mean_auroc(targets: np.ndarray, scores: np.ndarray) -> float | None:
    """AUROC of the target (mean over findings for multi-label); None when one class only."""
    values = [
        roc_auc(targets[:, k], scores[:, k])
        for k in range(targets.shape[1])
        if 0 < targets[:, k].sum() < len(targets)
    ]
    return float(np.mean(values)) if values else None


def train(
    dataset: Dataset,
    config: ExperimentConfig,
    settings: Settings | None = None,
    *,
    resume: str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train on ``dataset`` per ``config``; ``resume`` is the run directory of a killed run."""
    settings = settings or get_settings()
    info, device = distributed.setup(config.train.device)
    try:
        return _train(dataset, config, settings, info, device, resume, progress)
    finally:
        distributed.teardown(info)


def _train(
    dataset: Dataset,
    config: ExperimentConfig,
    settings: Settings,
    info: distributed.Dist,
    device: torch.device,
    resume: str | None,
    progress: bool,
) -> TrainResult:
    cfg = config.train
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    data = load_prepared(dataset, settings)
    targets = setup.target_columns(cfg, data.manifest)
    train_ds, val_ds = setup.datasets(data, targets, settings)
    spec = setup.preprocess_spec(cfg, data)
    model = build_model(
        cfg.backbone, weights=cfg.weights, num_outputs=len(targets), dropout=cfg.dropout
    )
    model = model.to(device)
    setup.configure_backends(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
    per_rank = len(train_ds) // info.world
    steps = max(1, per_rank // cfg.batch_size) if per_rank > cfg.batch_size else 1
    steps = min(steps, cfg.max_steps_per_epoch or steps)
    optimizer, scheduler = setup.optimisation(cfg, model, steps)
    loss_fn = setup.loss_function(cfg, train_ds.targets, device)

    state = RunState()
    if resume:
        last = checkpoint.load(storage.join(resume, "last.pt"), settings, trusted=True)
        model.load_state_dict(last["model"])
        optimizer.load_state_dict(last["optimizer"])
        scheduler.load_state_dict(last["scheduler"])
        state = RunState(**last["state"])
        checkpoint.set_rng_state(last["rng"])
        run_id, run_dir = last["run_id"], resume
        log.info(
            "resuming run %s at epoch %d, step %d", run_id, state.epoch + 1, state.step_in_epoch
        )
    tracker = None
    if info.main:
        from pneumo.training.tracking import Tracker

        tracker = Tracker(settings)
        if resume:
            tracker.reopen(run_id)
        else:
            tags = {
                "dataset": dataset.name,
                "backbone": cfg.backbone,
                "manifest_hash": data.card["manifest_hash"],
            }
            run_id = tracker.start(f"{dataset.name}-{cfg.backbone}", tags)
            run_dir = storage.join(settings.runs, run_id)
            tracker.params(run_id, config.model_dump(mode="json"))
            tracker.artifact(run_id, json.dumps(data.card, indent=2).encode(), "data_card.json")
            tracker.artifact(run_id, dump_config(config).encode(), "config.yaml")
            storage.makedirs(run_dir, settings)
            storage.write_text(storage.join(run_dir, "config.yaml"), dump_config(config), settings)
    elif not resume:
        run_id, run_dir = "", ""

    net: torch.nn.Module = torch.compile(model) if cfg.compile else model  # type: ignore[assignment]
    if info.enabled:
        net = DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
    ctx = StepContext(spec, device, bf16, cfg.channels_last, cfg.augment, cfg.seed)
    workers = loader_workers(cfg.workers, info.world)
    pin = device.type == "cuda"
    val_loader = make_loader(
        val_ds, batches_from(np.arange(len(val_ds)), cfg.batch_size * 2, False), workers, pin
    )
    epoch_batches = EpochBatches()
    train_loader = make_loader(train_ds, epoch_batches, workers, pin)
    common = {
        "model_config": {
            "backbone": cfg.backbone,
            "num_outputs": len(targets),
            "in_chans": 1,
            "dropout": cfg.dropout,
        },
        "preprocess": spec.to_dict(),
        "classes": ["Pneumonia"] if cfg.head == "binary" else targets,
        "head": cfg.head,
        "dataset": dataset.name,
        "manifest_hash": data.card["manifest_hash"],
        "versions": checkpoint.versions(),
        "config": config.model_dump(mode="json"),
    }

    def save_last() -> None:
        if not info.main:
            return
        resumable = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "state": asdict(state),
            "rng": checkpoint.rng_state(),
        }
        payload = {**common, **resumable, "run_id": run_id, "model": model.state_dict()}
        checkpoint.save(payload, storage.join(run_dir, "last.pt"), settings)

    stopped_early = False
    for epoch in range(state.epoch, cfg.epochs):
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch)
        order = torch.randperm(len(train_ds), generator=gen).numpy()
        mine = order[info.rank : per_rank * info.world : info.world]
        batches = batches_from(mine, cfg.batch_size, drop_last=True)[:steps]
        skip = state.step_in_epoch
        epoch_batches.batches = batches[skip:]

        def on_step(global_step: int, _: Any) -> None:
            state.global_step = global_step
            state.step_in_epoch += 1
            if global_step % cfg.checkpoint_every == 0:
                save_last()

        stats = train_epoch(
            net, train_loader, optimizer=optimizer,
            scheduler=scheduler, loss_fn=loss_fn, ctx=ctx, first_step=state.global_step,
            total=len(batches) - skip, on_step=on_step,
            desc=f"epoch {epoch + 1}/{cfg.epochs}", progress=progress and info.main,
        )  # fmt: skip
        val_scores, val_targets, val_loss = predict(model, val_loader, ctx, loss_fn)
        train_scores, train_targets = stats.arrays(len(targets))
        row = {
            "epoch": epoch,
            "train_loss": stats.loss,
            "train_auroc": mean_auroc(train_targets, train_scores),
            "val_loss": val_loss,
            "val_auroc": mean_auroc(val_targets, val_scores),
            "lr": float(scheduler.get_last_lr()[0]),
            "images_per_s": stats.seen * info.world / max(stats.seconds, 1e-9),
        }
        state.history.append(row)
        val_auroc = row["val_auroc"] if row["val_auroc"] is not None else -1.0
        improved = val_auroc > state.best_auroc + 1e-6 or state.best_epoch < 0
        state.epoch, state.step_in_epoch = epoch + 1, 0
        if improved:
            state.best_auroc, state.best_epoch, state.bad_epochs = val_auroc, epoch, 0
        else:
            state.bad_epochs += 1
        if info.main and tracker is not None:
            log.info(
                "epoch %d: train loss %.4f, val loss %.4f, val AUROC %s%s", epoch + 1, stats.loss,
                val_loss, "n/a" if row["val_auroc"] is None else f"{val_auroc:.4f}",
                " (best)" if improved else "",
            )  # fmt: skip
            tracker.metrics(
                run_id, {k: v for k, v in row.items() if v is not None and k != "epoch"}, epoch
            )
            if improved:
                threshold = None
                if cfg.head == "binary" and 0 < val_targets[:, 0].sum() < len(val_targets):
                    chosen = choose_threshold(val_targets[:, 0], val_scores[:, 0], "youden")
                    threshold = {"value": float(chosen.value), "method": "youden on validation"}
                checkpoint.save(
                    {**common, "run_id": run_id, "model": model.state_dict(), "epoch": epoch,
                     "val_auroc": row["val_auroc"], "threshold": threshold},
                    storage.join(run_dir, "best.pt"), settings,
                )  # fmt: skip
            save_last()
            storage.write_text(
                storage.join(run_dir, "history.json"), json.dumps(state.history, indent=1), settings
            )
        if distributed.broadcast_flag(info, state.bad_epochs >= cfg.patience):
            stopped_early = epoch + 1 < cfg.epochs
            break

    if info.main and tracker is not None:
        figure = history_png(state.history, f"{dataset.name} · {cfg.backbone}")
        storage.write_bytes(storage.join(run_dir, "history.png"), figure, settings)
        tracker.artifact(run_id, figure, "history.png")
        tracker.artifact(
            run_id,
            storage.read_bytes(storage.join(run_dir, "history.json"), settings),
            "history.json",
        )
        tracker.artifact(
            run_id,
            storage.read_bytes(storage.join(run_dir, "best.pt"), settings),
            "best.pt",
            "model",
        )
        tracker.finish(run_id)
    distributed.barrier(info)
    if state.best_epoch < 0:
        raise PneumoError("training ran no epoch", hint="check train.epochs and the resume point")
    return TrainResult(
        run_id, run_dir, storage.join(run_dir, "best.pt"), state.best_epoch, state.best_auroc,
        len(state.history), stopped_early,
    )  # fmt: skip
