"""`pneumo eda`: load a prepared dataset (preparing it first if needed) and write its report."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from pneumo import storage
from pneumo.config import load_config
from pneumo.data import schema
from pneumo.data.cache import CacheReader
from pneumo.data.preparation import output_url, prepare
from pneumo.data.sources.datasets import Dataset
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


def run_eda(dataset: Dataset, out: str | None = None, settings: Settings | None = None) -> str:
    """Write ``eda.html`` next to the dataset's manifest (or at ``out``); returns its URL."""
    from pneumo.reports.eda.page import render_report, write_report

    settings = settings or get_settings()
    folder = output_url(dataset, settings)
    if not storage.exists(storage.join(folder, "prepare.json"), settings):
        prepare(dataset, load_config(), settings)
    manifest = pd.read_parquet(
        io.BytesIO(storage.read_bytes(storage.join(folder, "manifest.parquet"), settings))
    )
    card = json.loads(storage.read_text(storage.join(folder, "data_card.json"), settings))
    samples = None
    if card.get("mode") == "images" and len(manifest):
        samples = pick_samples(manifest, CacheReader(storage.join(folder, "cache"), settings))
    html = render_report(manifest, card, samples, title=f"pneumo EDA: {dataset.name}")
    target = out or storage.join(folder, "eda.html")
    write_report(html, target, settings)
    return target
