"""`pneumo train`: a new run, or the continuation of a killed one, then an optional export.

``--resume`` continues a run with the config and dataset saved in its ``last.pt``; the demo
uses :func:`train_or_resume` to do the same for the run it recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from pneumo import paths, storage
from pneumo.config import ExperimentConfig, load_config
from pneumo.data.sources import datasets
from pneumo.data.sources.datasets import Dataset
from pneumo.errors import PneumoError
from pneumo.models import checkpoint
from pneumo.reports.terminal import training_summary
from pneumo.settings import Settings, get_settings
from pneumo.training.fit import TrainResult, train
from pneumo.training.runs import export_run, run_dir


@dataclass(frozen=True)
class Trained:
    result: TrainResult
    tracking: tuple[str, str]  # (tracking URI, experiment)

    def summary(self) -> str:
        r = self.result
        if not r.run_id:  # the other ranks of a torchrun job report nothing
            return ""
        best = (r.best_val_auroc, r.best_epoch)
        return training_summary(
            r.run_id, r.epochs_run, r.stopped_early, best, r.run_dir, self.tracking
        )


def resume(
    folder: str, settings: Settings, *, dataset: str | None = None, progress: bool
) -> TrainResult:
    """Continue the killed run in ``folder`` with its own config and (by default) dataset."""
    last = checkpoint.load(storage.join(folder, paths.LAST), settings, trusted=True)
    cfg = ExperimentConfig.model_validate(last.meta.config)
    entry = datasets.resolve(dataset or last.meta.dataset, settings)
    return train(entry, cfg, settings, resume=folder, progress=progress)


def is_finished(folder: str, settings: Settings) -> bool:
    """A run that trained to its end writes its history figure last."""
    return storage.exists(storage.join(folder, paths.HISTORY_FIGURE), settings)


def train_or_resume(
    entry: Dataset, cfg: ExperimentConfig, settings: Settings, folder: str | None, progress: bool
) -> tuple[TrainResult | None, str]:
    """(None, "reused") for a finished run in ``folder``, else the run resumed or started."""
    if folder and is_finished(folder, settings):
        return None, "reused"
    if folder and storage.exists(storage.join(folder, paths.LAST), settings):
        return resume(folder, settings, progress=progress), "resumed"
    return train(entry, cfg, settings, progress=progress), "started"


def run(
    dataset: str | None,
    config: str | None,
    overrides: list[str],
    *,
    resume_from: str | None = None,
    export: str | None = None,
    progress: bool = True,
) -> Trained:
    settings = get_settings()
    if resume_from:
        if config or overrides:
            raise PneumoError(
                "--resume continues a run with its own config", hint="drop --config and overrides"
            )
        result = resume(
            run_dir(resume_from, settings), settings, dataset=dataset, progress=progress
        )
    else:
        entry = datasets.resolve(dataset, settings)
        result = train(entry, load_config(config, overrides), settings, progress=progress)
    if export and result.run_id:
        export_run(result.run_id, result.run_dir, export, settings)
    return Trained(result, (settings.tracking_uri, settings.mlflow_experiment))
