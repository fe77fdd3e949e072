"""`pneumo train`: early-stop and select on validation only, checkpoint, track, resume.

The test split is never opened here: the datasets are built from the train and val shards only.
Rank 0 writes ``last.pt`` every ``train.checkpoint_every`` steps and at each epoch end (for
``--resume``), ``best.pt`` when validation AUROC improves, and the history; all of it is logged
to MLflow. What a run is made of (data, model, optimiser, loaders) is wired in
:mod:`pneumo.training.assembly`; this module drives the epochs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from pneumo import paths, storage
from pneumo.config import ExperimentConfig
from pneumo.data.sources.datasets import Dataset
from pneumo.errors import PneumoError
from pneumo.metrics.threshold import choose_threshold
from pneumo.models import checkpoint
from pneumo.models.checkpoint import Checkpoint
from pneumo.models.meta import TrainingThreshold
from pneumo.settings import Settings, get_settings
from pneumo.training import distributed
from pneumo.training.assembly import Assembly, assemble
from pneumo.training.history import history_png, mean_auroc
from pneumo.training.loop import Bar, EpochStats, batches_from, predict, train_epoch
from pneumo.training.supervision import Supervision
from pneumo.training.tracking import Tracker

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
    pruned: bool = False  # stopped by the supervisor's judgement (`pneumo tune`)


def train(
    dataset: Dataset,
    config: ExperimentConfig,
    settings: Settings | None = None,
    *,
    resume: str | None = None,
    progress: bool = True,
    supervision: Supervision | None = None,
) -> TrainResult:
    """Train on ``dataset`` per ``config``; ``resume`` is the run directory of a killed run.

    Under torchrun the process group is set up here unless the caller already has one (`pneumo
    tune` keeps one for all its trials); it is torn down by whoever set it up.
    """
    settings = settings or get_settings()
    owned = not distributed.initialized()
    info, device = distributed.setup(config.train.device)
    try:
        torch.manual_seed(config.train.seed)
        np.random.seed(config.train.seed)
        parts = assemble(dataset, config, settings, info, device)
        try:
            return Run(parts, settings, resume, supervision or Supervision()).fit(progress)
        finally:
            parts.close()
    finally:
        if owned:
            distributed.teardown(info)


class Run:
    """One training run: its state, its tracking, its checkpoints, epoch after epoch."""

    def __init__(
        self, parts: Assembly, settings: Settings, resume: str | None, supervision: Supervision
    ) -> None:
        self.parts = parts
        self.settings = settings
        self.supervision = supervision
        self.state = RunState()
        self.tracker: Tracker | None = None
        self.run_id, self.run_dir = "", resume or ""
        if resume:
            self._restore(resume)
        if parts.info.main:
            self._open_tracking(resume is not None)
            if supervision.on_start is not None:
                supervision.on_start(self.run_id, self.run_dir)

    def _restore(self, folder: str) -> None:
        last = checkpoint.load(storage.join(folder, paths.LAST), self.settings, trusted=True)
        if last.resume is None:
            raise PneumoError(f"{folder}/{paths.LAST} holds no resumable state")
        opt = self.parts.opt
        self.parts.model.load_state_dict(last.weights)
        opt.optimizer.load_state_dict(last.resume["optimizer"])
        opt.scheduler.load_state_dict(last.resume["scheduler"])
        self.state = RunState(**last.resume["state"])
        if self.parts.average is not None:
            if "average" not in last.resume:
                raise PneumoError(
                    f"{folder}/{paths.LAST} was trained without train.ema_decay",
                    hint="resume with the run's own config",
                )
            self.parts.average.load_state_dict(last.resume["average"])
        checkpoint.set_rng_state(last.resume["rng"])
        self.run_id = last.meta.run_id
        log.info(
            "resuming run %s at epoch %d, step %d",
            self.run_id,
            self.state.epoch + 1,
            self.state.step_in_epoch,
        )

    def _open_tracking(self, resumed: bool) -> None:
        self.tracker = tracker = Tracker(self.settings)
        if resumed:
            tracker.reopen(self.run_id)
            return
        p = self.parts
        tags = {"dataset": p.dataset, "backbone": p.cfg.train.backbone, "manifest_hash": p.hash}
        tags.update(self.supervision.tags)
        self.run_id = tracker.start(f"{p.dataset}-{p.cfg.train.backbone}", tags, p.data_card)
        self.run_dir = storage.join(self.settings.runs, self.run_id)
        config_yaml = p.config_yaml()
        tracker.params(self.run_id, p.cfg.model_dump(mode="json"))
        tracker.artifact(self.run_id, json.dumps(p.data_card, indent=2).encode(), paths.DATA_CARD)
        tracker.artifact(self.run_id, config_yaml.encode(), paths.CONFIG)
        storage.makedirs(self.run_dir, self.settings)
        storage.write_text(storage.join(self.run_dir, paths.CONFIG), config_yaml, self.settings)

    def fit(self, progress: bool) -> TrainResult:
        p, state = self.parts, self.state
        stopped_early = pruned = False
        for epoch in range(state.epoch, p.cfg.train.epochs):
            self._epoch(epoch, progress and p.info.main)
            pruned = distributed.broadcast_flag(p.info, self._judged_out(epoch))
            if pruned or distributed.broadcast_flag(
                p.info, state.bad_epochs >= p.cfg.train.patience
            ):
                stopped_early = epoch + 1 < p.cfg.train.epochs
                break
        if p.info.main:
            self._finish(pruned)
        distributed.barrier(p.info)
        if state.best_epoch < 0:
            raise PneumoError(
                "training ran no epoch", hint="check train.epochs and the resume point"
            )
        return TrainResult(
            self.run_id, self.run_dir, storage.join(self.run_dir, paths.BEST), state.best_epoch,
            state.best_auroc, len(state.history), stopped_early, pruned,
        )  # fmt: skip

    def _judged_out(self, epoch: int) -> bool:
        """The supervisor's verdict on the epoch just validated (rank 0 asks; others wait)."""
        judge = self.supervision.after_epoch
        if judge is None or not self.parts.info.main:
            return False
        return judge(epoch, self.state.history[-1]["val_auroc"])

    def _epoch(self, epoch: int, progress: bool) -> None:
        p, state, cfg = self.parts, self.state, self.parts.cfg.train
        batches = batches_from(p.epoch_order(epoch), cfg.batch_size, drop_last=True)[: p.steps]
        p.epoch_batches.batches = batches[state.step_in_epoch :]
        if p.stream is not None:
            p.stream.plan(p.epoch_batches.batches, p.train_ds.shard_of)
        bar = Bar(len(p.epoch_batches), f"epoch {epoch + 1}/{cfg.epochs}") if progress else None
        stats = train_epoch(
            p.net, p.train_loader, p.opt, p.ctx, first_step=state.global_step,
            on_step=self._after_step, bar=bar,
        )  # fmt: skip
        judged = p.selected
        val_scores, val_targets, val_loss = predict(judged, p.val_loader, p.ctx, p.opt.loss_fn)
        row = self._history_row(epoch, stats, val_targets, val_scores, val_loss)
        state.history.append(row)
        val_auroc = row["val_auroc"] if row["val_auroc"] is not None else -1.0
        improved = val_auroc > state.best_auroc + 1e-6 or state.best_epoch < 0
        state.epoch, state.step_in_epoch = epoch + 1, 0
        if improved:
            state.best_auroc, state.best_epoch, state.bad_epochs = val_auroc, epoch, 0
        else:
            state.bad_epochs += 1
        if self.tracker is not None:
            self._record_epoch(row, improved, val_targets, val_scores)

    def _after_step(self, global_step: int) -> None:
        if self.parts.average is not None:
            self.parts.average.update(self.parts.model)
        if self.parts.stream is not None:
            self.parts.stream.advance()
        self.state.global_step = global_step
        self.state.step_in_epoch += 1
        if global_step % self.parts.cfg.train.checkpoint_every == 0:
            self._save_last()

    def _history_row(
        self,
        epoch: int,
        stats: EpochStats,
        val_targets: np.ndarray,
        val_scores: np.ndarray,
        val_loss: float,
    ) -> dict[str, Any]:
        p = self.parts
        train_scores, train_targets = stats.arrays(len(p.targets))
        return {
            "epoch": epoch,
            "train_loss": stats.loss,
            "train_auroc": mean_auroc(train_targets, train_scores),
            "val_loss": val_loss,
            "val_auroc": mean_auroc(val_targets, val_scores),
            "lr": float(p.opt.scheduler.get_last_lr()[0]),
            "images_per_s": stats.seen * p.info.world / max(stats.seconds, 1e-9),
        }

    def _record_epoch(
        self, row: dict[str, Any], improved: bool, val_targets: np.ndarray, val_scores: np.ndarray
    ) -> None:
        assert self.tracker is not None
        auroc = row["val_auroc"]
        log.info(
            "epoch %d: train loss %.4f, val loss %.4f, val AUROC %s%s", row["epoch"] + 1,
            row["train_loss"], row["val_loss"], "n/a" if auroc is None else f"{auroc:.4f}",
            " (best)" if improved else "",
        )  # fmt: skip
        values = {k: v for k, v in row.items() if v is not None and k != "epoch"}
        self.tracker.metrics(self.run_id, values, row["epoch"])
        if improved:
            self._save_best(row["epoch"], auroc, val_targets, val_scores)
        self._save_last()
        history = json.dumps(self.state.history, indent=1)
        storage.write_text(storage.join(self.run_dir, paths.HISTORY), history, self.settings)

    def _save_best(
        self, epoch: int, auroc: float | None, val_targets: np.ndarray, val_scores: np.ndarray
    ) -> None:
        threshold = None
        if self.parts.meta.is_binary and 0 < val_targets[:, 0].sum() < len(val_targets):
            chosen = choose_threshold(val_targets[:, 0], val_scores[:, 0], "youden")
            threshold = TrainingThreshold(float(chosen.value), "youden on validation")
        meta = self.parts.meta_for(self.run_id).with_selection(epoch, auroc, threshold)
        best = Checkpoint(meta, self.parts.selected.state_dict())
        checkpoint.save(best, storage.join(self.run_dir, paths.BEST), self.settings)

    def _save_last(self) -> None:
        if not self.parts.info.main:
            return
        opt = self.parts.opt
        resume = {
            "optimizer": opt.optimizer.state_dict(),
            "scheduler": opt.scheduler.state_dict(),
            "state": asdict(self.state),
            "rng": checkpoint.rng_state(),
        }
        if self.parts.average is not None:
            resume["average"] = self.parts.average.state_dict()
        last = Checkpoint(self.parts.meta_for(self.run_id), self.parts.model.state_dict(), resume)
        checkpoint.save(last, storage.join(self.run_dir, paths.LAST), self.settings)

    def _finish(self, pruned: bool) -> None:
        assert self.tracker is not None
        folder, settings, run_id = self.run_dir, self.settings, self.run_id
        if pruned:
            self.tracker.tags(run_id, {"pruned": "true"})
        title = f"{self.parts.dataset} · {self.parts.cfg.train.backbone}"
        figure = history_png(self.state.history, title)
        storage.write_bytes(storage.join(folder, paths.HISTORY_FIGURE), figure, settings)
        self.tracker.artifact(run_id, figure, paths.HISTORY_FIGURE)
        for name, artifact_dir in ((paths.HISTORY, None), (paths.BEST, paths.ARTIFACT_MODEL_DIR)):
            data = storage.read_bytes(storage.join(folder, name), settings)
            self.tracker.artifact(run_id, data, name, artifact_dir)
        self.tracker.finish(run_id)
