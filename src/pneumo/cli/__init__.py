"""The `pneumo` command line: Typer only. Each command parses its options, calls one stage
(:mod:`pneumo.stages`) and echoes its result's summary; the stages are imported when a command
runs, so `pneumo --help` stays quick."""

from pneumo.cli import data_commands, model_commands, service_commands
from pneumo.cli.application import app, main

__all__ = ["app", "data_commands", "main", "model_commands", "service_commands"]
