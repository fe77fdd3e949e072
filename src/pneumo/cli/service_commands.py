"""Serving and the whole cycle: serve, demo, config."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from pneumo.cli.application import ConfigOpt, Overrides, app, arg, opt


@app.command("serve")
def serve(
    model: Annotated[
        str | None, arg("models:/NAME@ALIAS (champion), models:/NAME/N or a folder.")
    ] = None,
    host: Annotated[str | None, opt("Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, opt("Port (default 8000).")] = None,
) -> None:
    """Serve the model over HTTP: REST API, web page, Prometheus metrics, hot swap."""
    # The service's matrix products are small (the OOD score's neighbours, the drift checks):
    # one BLAS thread, whose idle pool cannot then spin on the cores ONNX Runtime needs. Read
    # when numpy loads, so set before it does; an explicit OPENBLAS_NUM_THREADS wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from pneumo.serving.main import run_server

    run_server(model=model, host=host, port=port)


@app.command("monitor")
def monitor(
    records: Annotated[
        str | None, opt("Records folder or URL (default $PNEUMO_ROOT/monitoring/records).")
    ] = None,
    since: Annotated[str | None, opt("From this date or date-time (ISO, UTC).")] = None,
    until: Annotated[str | None, opt("Until this date or date-time (ISO, UTC).")] = None,
    out: Annotated[
        str | None, opt("Report folder (default $PNEUMO_ROOT/monitoring/report).")
    ] = None,
    window: Annotated[int, opt("Images per drift window.")] = 50,
    alpha: Annotated[float, opt("A test flags drift below this p-value.")] = 0.01,
    as_json: Annotated[bool, opt("Print the report as JSON.", "--json")] = False,
) -> None:
    """Report on served models: drift over time, distributions, data quality, labelled
    performance (HTML, and JSON)."""
    from pneumo.reports.monitoring import to_json
    from pneumo.stages.monitor import monitor as stage

    result = stage(records, since=since, until=until, out=out, window=window, alpha=alpha)
    typer.echo(to_json(result.timeline) if as_json else result.summary())


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
