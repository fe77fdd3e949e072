"""`pneumo prepare`: validate, split and cache a dataset; write its manifest and data card."""

from __future__ import annotations

from dataclasses import dataclass

from pneumo.config import load_config
from pneumo.data.preparation import PrepareResult, prepare
from pneumo.data.sources import datasets
from pneumo.reports.terminal import prepare_summary


@dataclass(frozen=True)
class Prepared:
    result: PrepareResult

    def summary(self) -> str:
        return prepare_summary(self.result)


def run(
    dataset: str | None,
    config: str | None,
    overrides: list[str],
    *,
    strict: bool = False,
    metadata_only: bool = False,
    progress: bool = True,
) -> Prepared:
    extra = [*overrides]
    if strict:
        extra.append("prepare.strict=true")
    if metadata_only:
        extra.append("prepare.metadata_only=true")
    cfg = load_config(config, extra)
    return Prepared(prepare(datasets.resolve(dataset), cfg, progress=progress))
