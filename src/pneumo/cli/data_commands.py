"""The data commands: fetch, datasets, prepare, eda."""

from __future__ import annotations

from typing import Annotated

import typer

from pneumo.cli.application import (
    ConfigOpt,
    DatasetOpt,
    MirrorOpt,
    NameOpt,
    Overrides,
    QuietOpt,
    app,
    arg,
    fetch_app,
    opt,
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
