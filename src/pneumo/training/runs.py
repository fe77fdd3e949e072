"""Finding runs on disk, and the `pneumo train` command's glue."""

from __future__ import annotations

from pneumo import storage
from pneumo.config import ExperimentConfig, load_config
from pneumo.data.sources import datasets
from pneumo.errors import PneumoError
from pneumo.settings import Settings, get_settings


def run_dir(ref: str, settings: Settings) -> str:
    """A run's folder from its id, its folder, or 'last' (the most recently written run)."""
    if ref == "last":
        runs = [
            storage.join(settings.runs, name) for name in storage.listdir(settings.runs, settings)
        ]
        runs = [r for r in runs if storage.exists(storage.join(r, "last.pt"), settings)]
        if not runs:
            raise PneumoError(
                f"no resumable run under {settings.runs}", hint="start one with `pneumo train`"
            )
        return max(
            runs, key=lambda r: storage.size_and_mtime(storage.join(r, "last.pt"), settings)[1]
        )
    for candidate in (ref, storage.join(settings.runs, ref)):
        if storage.exists(storage.join(candidate, "last.pt"), settings) or storage.exists(
            storage.join(candidate, "best.pt"), settings
        ):
            return storage.absolute(candidate)
    raise PneumoError(
        f"no run {ref!r} (looked in {settings.runs})",
        hint="give a run id from `pneumo train`'s output",
    )


EXPORTED = ("best.pt", "history.json", "history.png")


def export_run(run_id: str, folder: str, dest: str, settings: Settings) -> None:
    """Copy a finished run's model and history to ``dest`` (a fixed path for pipelines), with
    ``run.json`` naming the run, so DVC can track outputs that do not depend on the run id."""
    import json

    for name in EXPORTED:
        source = storage.join(folder, name)
        storage.write_bytes(
            storage.join(dest, name), storage.read_bytes(source, settings), settings
        )
    storage.write_text(
        storage.join(dest, "run.json"), json.dumps({"run_id": run_id, "run_dir": folder}), settings
    )


def train_command(
    dataset: str | None,
    config: str | None,
    overrides: list[str],
    resume: str | None,
    progress: bool,
    export: str | None = None,
) -> str:
    from pneumo.models import checkpoint
    from pneumo.training.fit import train

    settings = get_settings()
    if resume:
        folder = run_dir(resume, settings)
        last = checkpoint.load(storage.join(folder, "last.pt"), settings, trusted=True)
        if config or overrides:
            raise PneumoError(
                "--resume continues a run with its own config", hint="drop --config and overrides"
            )
        cfg = ExperimentConfig.model_validate(last["config"])
        entry = datasets.resolve(dataset or last["dataset"], settings)
        result = train(entry, cfg, settings, resume=folder, progress=progress)
    else:
        cfg = load_config(config, overrides)
        entry = datasets.resolve(dataset, settings)
        result = train(entry, cfg, settings, progress=progress)
    if not result.run_id:
        return ""
    if export:
        export_run(result.run_id, result.run_dir, export, settings)
    stop = " (early stop)" if result.stopped_early else ""
    return (
        f"run {result.run_id}: {result.epochs_run} epoch(s){stop}, best val AUROC "
        f"{result.best_val_auroc:.4f} at epoch {result.best_epoch + 1}\n"
        f"checkpoint: {result.best}\nhistory: {result.run_dir}/history.png\n"
        f"MLflow: {settings.tracking_uri} (experiment '{settings.mlflow_experiment}')"
    )
