"""The `pneumo` command line: Typer only. Each command parses its options, calls one stage
(:mod:`pneumo.stages`) and echoes its result's summary; the stages are imported when a command
runs, so `pneumo --help` stays quick."""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer

from pneumo.errors import PneumoError


def opt(help: str, *names: str) -> Any:
    return typer.Option(*names, help=help)


def arg(help: str) -> Any:
    return typer.Argument(help=help)


app = typer.Typer(
    name="pneumo",
    help="Pneumonia detection on chest X-rays: data, training, evaluation, registry, serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
fetch_app = typer.Typer(
    help="Get a dataset and register it (see `pneumo datasets`).", no_args_is_help=True
)
app.add_typer(fetch_app, name="fetch")

ConfigOpt = Annotated[str | None, opt("Experiment config YAML (path or URL).", "--config", "-c")]
Overrides = Annotated[
    list[str] | None,
    typer.Argument(
        help="Dotted overrides, e.g. prepare.image_size=128 split.seed=1.", show_default=False
    ),
]
NameOpt = Annotated[str | None, opt("Name to register the dataset under.", "--name")]
QuietOpt = Annotated[bool, opt("No progress bars.", "--quiet", "-q")]
MirrorOpt = Annotated[str | None, opt("Base URL of a mirror holding the same file names.")]
DatasetOpt = Annotated[
    str | None, opt("Dataset name or path; default: the last.", "--dataset", "-d")
]


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", stream=sys.stderr
    )


@fetch_app.command("synthetic")
def fetch_synthetic(
    name: Annotated[str, opt("Dataset name.")] = "synthetic",
    config: ConfigOpt = None,
    overrides: Overrides = None,
    quiet: QuietOpt = False,
) -> None:
    """Generate a seeded SYNTHETIC chest-radiograph-like dataset in the NIH layout (no download)."""
    from pneumo.stages import fetch

    typer.echo(fetch.run_synthetic(name, config, overrides or [], progress=not quiet).summary())


@fetch_app.command("local")
def fetch_local(
    path: Annotated[str, arg("Folder in NIH or Kermany layout, or an NIH label file.")],
    name: NameOpt = None,
) -> None:
    """Register an existing dataset without copying it (layout detected)."""
    from pneumo.stages import fetch

    typer.echo(fetch.run_local(path, name).summary())


@fetch_app.command("nih")
def fetch_nih(
    parts: Annotated[
        str | None, opt("Archives to take, e.g. '1,2' or '1-3' (of 12); default all.")
    ] = None,
    mirror: MirrorOpt = None,
    name: NameOpt = None,
) -> None:
    """Download NIH ChestX-ray14 (resumable, verified) and extract it in the NIH layout."""
    from pneumo.stages import fetch

    typer.echo(fetch.run_remote("nih", parts, mirror, name).summary())


@fetch_app.command("kermany")
def fetch_kermany(mirror: MirrorOpt = None, name: NameOpt = None) -> None:
    """Download the Kermany pediatric set (Mendeley Data, CC BY 4.0) in the Kermany layout."""
    from pneumo.stages import fetch

    typer.echo(fetch.run_remote("kermany", None, mirror, name).summary())


@app.command("datasets")
def datasets() -> None:
    """List registered datasets (the current one is starred)."""
    from pneumo.stages import fetch

    typer.echo(fetch.listing().summary())


@app.command("prepare")
def prepare(
    dataset: DatasetOpt = None,
    config: ConfigOpt = None,
    overrides: Overrides = None,
    strict: Annotated[bool, opt("Make every data problem fatal.")] = False,
    metadata_only: Annotated[
        bool, opt("Use the label file only, no images.", "--metadata-only")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Validate, split and cache a dataset; write its manifest and data card."""
    from pneumo.stages import prepare as stage

    result = stage.run(
        dataset, config, overrides or [], strict=strict, metadata_only=metadata_only,
        progress=not quiet,
    )  # fmt: skip
    typer.echo(result.summary())


@app.command("eda")
def eda(
    dataset: DatasetOpt = None,
    out: Annotated[str | None, opt("Where to write the HTML report.")] = None,
) -> None:
    """Write a self-contained HTML report on a prepared dataset."""
    from pneumo.stages import eda as stage

    typer.echo(stage.run(dataset, out).summary())


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


@app.command("evaluate")
def evaluate(
    run: Annotated[
        str, arg("Run id, run folder, checkpoint (.pt) path or URL, or 'last'.")
    ] = "last",
    config: ConfigOpt = None,
    overrides: Overrides = None,
    split: Annotated[str | None, opt("train | val | test (default: test).")] = None,
    dataset: DatasetOpt = None,
    out: Annotated[str | None, opt("Folder for metrics.json, report.md, figures.")] = None,
) -> None:
    """Metrics with confidence intervals on a split, at a threshold chosen on validation."""
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


@app.command("serve")
def serve(
    model: Annotated[
        str | None, arg("models:/NAME@ALIAS (champion), models:/NAME/N or a folder.")
    ] = None,
    host: Annotated[str | None, opt("Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, opt("Port (default 8000).")] = None,
) -> None:
    """Serve the model over HTTP: REST API, web page, Prometheus metrics, hot swap."""
    from pneumo.serving.main import run_server

    run_server(model=model, host=host, port=port)


@app.command("demo")
def demo(
    data: Annotated[
        str | None, opt("A dataset folder (NIH or Kermany layout); default synthetic.")
    ] = None,
    config: ConfigOpt = None,
    overrides: Overrides = None,
    host: Annotated[str | None, opt("Interface to serve on (127.0.0.1).")] = None,
    port: Annotated[int | None, opt("Port to serve on (8000).")] = None,
    serve: Annotated[bool, opt("End by serving the model (Ctrl-C stops).")] = True,
) -> None:
    """The whole cycle: fetch, prepare, eda, train, evaluate, register, promote, serve."""
    from pneumo.stages import demo as stage

    stage.run(data, config, overrides or [], host=host, port=port, serve=serve, echo=typer.echo)
    if serve:
        typer.echo("service stopped; everything done is kept (a re-run reuses it)")


@app.command("config")
def show_config(config: ConfigOpt = None, overrides: Overrides = None) -> None:
    """Print the resolved experiment config (defaults, file, overrides) as YAML."""
    from pneumo.config import dump_config, load_config

    typer.echo(dump_config(load_config(config, overrides)), nl=False)


def main() -> None:
    try:
        app()
    except PneumoError as exc:
        typer.secho(f"error: {exc.message}", fg="red", err=True)
        if exc.hint:
            typer.echo(f"  hint: {exc.hint}", err=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        typer.echo("interrupted; finished work is kept, re-run to resume", err=True)
        raise SystemExit(130) from None
