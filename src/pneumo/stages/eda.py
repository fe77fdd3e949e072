"""`pneumo eda`: load a prepared dataset (preparing it first if needed) and write its report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pneumo import paths, storage
from pneumo.config import load_config
from pneumo.data import schema
from pneumo.data.cache import CacheReader
from pneumo.data.preparation import prepare
from pneumo.data.prepared import is_prepared, load_prepared
from pneumo.data.sources import datasets
from pneumo.data.sources.datasets import Dataset
from pneumo.reports.eda.page import render_report, write_eda_report
from pneumo.settings import Settings, get_settings

SAMPLES_PER_CLASS = 4
CLASS_NAMES = {1: "Pneumonia", 0: "No Pneumonia"}


def pick_samples(
    manifest: pd.DataFrame, cache: CacheReader, per_class: int = SAMPLES_PER_CLASS, seed: int = 0
) -> dict[str, list[tuple[str, np.ndarray]]]:
    """A few cached images of each class, chosen reproducibly (training split first)."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for label, name in CLASS_NAMES.items():
        rows = manifest[manifest[schema.LABEL] == label].sort_values(
            [schema.SPLIT, schema.IMAGE_ID],
            key=lambda s: s.ne("train") if s.name == schema.SPLIT else s,
        )
        if rows.empty:
            continue
        chosen = rows.iloc[
            np.sort(rng.choice(len(rows), size=min(per_class, len(rows)), replace=False))
        ]
        out[name] = [
            (str(r[schema.IMAGE_ID]), cache.image(str(r[schema.SHARD]), int(r[schema.SHARD_INDEX])))
            for _, r in chosen.iterrows()
        ]
    return out


@dataclass(frozen=True)
class EdaReport:
    url: str

    def summary(self) -> str:
        return f"EDA report: {self.url}"


def run(dataset: str | None, out: str | None = None) -> EdaReport:
    return EdaReport(run_eda(datasets.resolve(dataset), out=out))


def run_eda(dataset: Dataset, out: str | None = None, settings: Settings | None = None) -> str:
    """Write ``eda.html`` next to the dataset's manifest (or at ``out``); returns its URL."""
    settings = settings or get_settings()
    if not is_prepared(dataset, settings):
        prepare(dataset, load_config(), settings)
    data = load_prepared(dataset, settings, images=False)
    samples = None
    if data.has_images and len(data.manifest):
        samples = pick_samples(data.manifest, CacheReader(data.cache, settings))
    html = render_report(data.manifest, data.card, samples, title=f"pneumo EDA: {dataset.name}")
    target = out or storage.join(data.folder, paths.EDA_REPORT)
    write_eda_report(html, target, settings)
    return target
