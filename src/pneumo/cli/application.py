"""The Typer application, its shared options and the error handling of every command."""

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
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logs.")] = False,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Logs as JSON lines (ts, level, logger, message).")
    ] = False,
) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_json:
        from pneumo.serving.logs import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S")
        )
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    if not verbose:  # botocore says "Found credentials in environment variables" at INFO
        for name in ("botocore", "aiobotocore", "boto3", "s3fs"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _report(exc: PneumoError) -> None:
    typer.secho(f"error: {exc.message}", fg="red", err=True)
    if exc.hint:
        typer.echo(f"  hint: {exc.hint}", err=True)
    raise SystemExit(2) from None


def _storage_failure(exc: Exception) -> PneumoError | None:
    """A storage or tracking failure said as a PneumoError; None for anything else."""
    from pneumo.object_store import storage_failure
    from pneumo.settings import get_settings

    try:
        settings = get_settings()
    except Exception:
        return None
    return storage_failure(exc, settings)


def main() -> None:
    try:
        app()
    except PneumoError as exc:
        _report(exc)
    except KeyboardInterrupt:
        typer.echo("interrupted; finished work is kept, re-run to resume", err=True)
        raise SystemExit(130) from None
    except Exception as exc:
        failure = _storage_failure(exc)
        if failure is None:
            raise
        _report(failure)
