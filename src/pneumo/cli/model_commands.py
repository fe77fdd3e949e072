"""The model commands: train, tune, evaluate, register, promote, report, predict."""

from __future__ import annotations

from typing import Annotated

import typer

from pneumo.cli.application import ConfigOpt, DatasetOpt, Overrides, QuietOpt, app, arg, opt


@app.command("train")
def train(
    dataset: DatasetOpt = None,
    config: ConfigOpt = None,
    overrides: Overrides = None,
    resume: Annotated[
        str | None, opt("Continue a killed run: its run id, its folder, or 'last'.")
    ] = None,
    export: Annotated[
        str | None, opt("Also copy best.pt and history to this folder (fixed path, for DVC).")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Train a classifier on a prepared dataset (train and val splits only), tracked in MLflow.

    Several GPUs or nodes: `torchrun --nproc-per-node N -m pneumo train ...`.
    """
    from pneumo.stages import train as stage

    result = stage.run(
        dataset, config, overrides or [], resume_from=resume, export=export, progress=not quiet
    )
    summary = result.summary()
    if summary:  # empty on the non-zero ranks of a torchrun job
        typer.echo(summary)


@app.command("tune")
def tune(
    dataset: DatasetOpt = None,
    config: ConfigOpt = None,
    overrides: Overrides = None,
    study: Annotated[
        str | None, opt("Study name (default: DATASET-BACKBONE); the same name continues it.")
    ] = None,
    storage: Annotated[
        str | None,
        opt(
            "Study database, a SQLAlchemy URL (default: PNEUMO_TUNE_STORAGE or SQLite under "
            "the root); share one to tune with workers on several machines."
        ),
    ] = None,
    trials: Annotated[
        int | None, opt("Finished trials to reach (tune.trials); reruns go on from there.")
    ] = None,
    out: Annotated[str | None, opt("Also write the best trial's config YAML here.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Search tune.space with Optuna (TPE, pruning on val AUROC); every trial a training run.

    Killed? Run the same command again: finished trials are kept, a killed one continues.
    Several GPUs: `torchrun --nproc-per-node N -m pneumo tune ...`.
    """
    from pneumo.stages import tune as stage

    result = stage.run(
        dataset, config, overrides or [], study=study, storage_url=storage, trials=trials,
        out=out, progress=not quiet,
    )  # fmt: skip
    summary = result.summary()
    if summary:
        typer.echo(summary)


@app.command("evaluate")
def evaluate(
    run: Annotated[
        str,
        arg(
            "Run id, run folder, checkpoint (.pt) path or URL, or 'last'; with --external also "
            "a registered version (models:/pneumonia@champion) or a package folder."
        ),
    ] = "last",
    config: ConfigOpt = None,
    overrides: Overrides = None,
    split: Annotated[
        str | None,
        opt(
            "train | val | test (default: test); with --external, one of the dataset's own "
            "splits (a Kermany folder: train, val, test; NIH: train_val, test; default: all)."
        ),
    ] = None,
    dataset: DatasetOpt = None,
    external: Annotated[
        str | None,
        opt(
            "Evaluate on a dataset the model never saw (a registered name or a path), at the "
            "threshold the model carries; images it trained on are left out and counted."
        ),
    ] = None,
    out: Annotated[str | None, opt("Folder for metrics.json, report.md, figures.")] = None,
) -> None:
    """Metrics with confidence intervals on a split, at a threshold chosen on validation."""
    if external is not None:
        if dataset is not None:
            raise typer.BadParameter("give --external DATASET or --dataset, not both")
        from pneumo.stages import external as outside

        found = outside.run(run, external, config, overrides or [], split=split, out=out)
        typer.echo(found.summary())
        return
    from pneumo.stages import evaluate as stage

    result = stage.run(run, config, overrides or [], split=split, dataset=dataset, out=out)
    typer.echo(result.summary())


@app.command("register")
def register(
    run: Annotated[str, arg("Run id, run folder, checkpoint (.pt), or 'last'.")] = "last",
    config: ConfigOpt = None,
    overrides: Overrides = None,
    evaluation: Annotated[
        str | None, opt("Folder of the test evaluation to card (default: the run's eval-test).")
    ] = None,
    out: Annotated[
        str | None, opt("Where to write the package (default: the run's model/).")
    ] = None,
) -> None:
    """Export a run's best model to ONNX, check parity, write its card, register a challenger."""
    from pneumo.stages import register as stage

    result = stage.run(run, config, overrides or [], evaluation=evaluation, out=out)
    typer.echo(result.summary())


@app.command("promote")
def promote(
    version: Annotated[
        str | None, opt("Version to promote (default: the challenger); rollback.")
    ] = None,
    force: Annotated[bool, opt("Promote even if the gate fails (recorded).")] = False,
    reason: Annotated[str, opt("Why: recorded with the promotion.")] = "",
    history: Annotated[bool, opt("List versions and past promotions.")] = False,
    config: ConfigOpt = None,
    overrides: Overrides = None,
) -> None:
    """Move alias 'champion' to a version if it passes the gate against the current champion."""
    from pneumo.stages import promote as stage

    result = stage.run(
        config, overrides or [], version=version, force=force, reason=reason,
        show_history=history,
    )  # fmt: skip
    typer.echo(result.summary())


@app.command("report")
def report(
    candidate: Annotated[
        str, arg("models:/NAME@ALIAS, models:/NAME/N, or a run id / 'last'.")
    ] = "models:/pneumonia@challenger",
    baseline: Annotated[
        str, arg("What to compare with (default: the champion).")
    ] = "models:/pneumonia@champion",
    out: Annotated[str | None, opt("Folder for report.md, report.html.")] = None,
    split: Annotated[str, opt("Evaluation split of runs.")] = "test",
    config: ConfigOpt = None,
    overrides: Overrides = None,
) -> None:
    """Compare two models (metrics with intervals, deltas, curves, data, gate verdict)."""
    from pneumo.stages import report as stage

    result = stage.run(candidate, baseline, config, overrides or [], out=out, split=split)
    typer.echo(result.summary())


@app.command("optimize")
def optimize(
    model: Annotated[
        str, arg("The registered version: models:/NAME/N or models:/NAME@ALIAS.")
    ] = "models:/pneumonia@champion",
    config: ConfigOpt = None,
    overrides: Overrides = None,
) -> None:
    """Make an int8 variant of a registered version; registered only if it passes its gate."""
    from pneumo.stages import optimize as stage

    typer.echo(stage.run(model, config, overrides or []).summary())


@app.command("predict")
def predict(
    inputs: Annotated[list[str], arg("Files, folders, glob patterns or URLs (PNG, JPEG, DICOM).")],
    model: Annotated[
        str | None, opt("models:/NAME@ALIAS (champion), models:/NAME/N or a folder.")
    ] = None,
    out: Annotated[str | None, opt("Table to write (.parquet; a .csv beside it).")] = None,
    batch: Annotated[int, opt("Images per ONNX Runtime call.")] = 32,
    explain: Annotated[
        str | None, opt("Folder for each file's activation-map overlay (PNG).")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Score files in bulk with a registered model (torch-free); a killed run resumes."""
    from pneumo.stages import predict as stage

    result = stage.run(inputs, model, out, batch=batch, progress=not quiet, explain=explain)
    typer.echo(result.summary())
