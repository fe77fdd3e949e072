"""The image cache of a dataset, built by `prepare`: decode once, shard by split, keep twins
together.

:func:`build_cache` decodes every image not cached yet into shards of one split each (see
:mod:`pneumo.data.cache`); :func:`join_cache` adds the cache columns to the manifest and
quarantines images that failed or duplicate another byte for byte; :func:`keep_twins_together`
moves re-encoded or resized twins, and the other images of their patients, into one split
(:mod:`pneumo.data.near_duplicates`), copying their pixels into ``<split>-moved-NNNNN`` shards
so that a split's images still live only in that split's shards.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from tqdm import tqdm

from pneumo import storage
from pneumo.data import cache, schema
from pneumo.data.decode.pool import Record, decode_many, worker_count
from pneumo.data.near_duplicates import Twins, keep_together
from pneumo.data.problems import Problem
from pneumo.preprocess import ImageSpec
from pneumo.settings import Settings

log = logging.getLogger(__name__)
Results = dict[str, tuple[str, int, Record]]  # image id -> (shard file, row or -1, record)
RECORD_COLUMNS = (
    schema.CONTENT_HASH, schema.PERCEPTUAL_HASH, schema.SRC_MODE, schema.MEAN_INTENSITY,
    schema.STD_INTENSITY,
)  # fmt: skip


def build_cache(
    frame: pd.DataFrame, cache_url: str, spec: ImageSpec, shard_size: int,
    settings: Settings, progress: bool,
) -> Results:  # fmt: skip
    """Fill the cache; returns image id → (shard file, index in shard or -1, record)."""
    storage.makedirs(cache_url, settings)
    storage.remove_stale_temporaries(cache_url, settings)
    entries = list(
        zip(
            frame[schema.SPLIT],
            frame[schema.IMAGE_ID],
            frame[schema.PATH],
            frame["stamp"],
            strict=True,
        )
    )
    plans = cache.plan_shards(entries, spec, shard_size)
    cache.remove_unplanned(cache_url, plans, settings)
    cache.write_spec(cache_url, spec, settings)
    results: Results = {}
    pending = []
    for plan in plans:
        done = cache.load_done(cache_url, plan, settings)
        if done is None:
            pending.append(plan)
        else:
            _collect(results, plan, done)
    todo = sum(len(p.image_ids) for p in pending)
    if not todo:
        return results
    log.info("decoding %d image(s) into %d shard(s); %d shard(s) already done",
             todo, len(pending), len(plans) - len(pending))  # fmt: skip
    urls = (url for plan in pending for url in plan.urls)
    stream = decode_many(urls, spec, worker_count(settings.workers), todo)
    with tqdm(total=todo, desc="caching images", unit="img", disable=not progress) as bar:
        for plan in pending:
            arrays: list[np.ndarray] = []
            records: list[Record] = []
            for _ in plan.image_ids:
                record, pixels = next(stream)
                if pixels is not None:
                    record["index"] = len(arrays)
                    arrays.append(pixels)
                records.append(record)
                bar.update()
            cache.write_shard(cache_url, plan, arrays, records, spec.size, settings)
            _collect(results, plan, records)
    return results


def _collect(results: Results, plan: cache.ShardPlan, records: list[Record]) -> None:
    for image_id, record in zip(plan.image_ids, records, strict=True):
        results[image_id] = (plan.npy, int(record.get("index", -1)), record)


def join_cache(frame: pd.DataFrame, results: Results) -> tuple[pd.DataFrame, list[Problem]]:
    """Add the cache columns; drop (and report) images that failed or duplicate another."""
    entries = [results[i] for i in frame[schema.IMAGE_ID]]
    records = [rec for _, _, rec in entries]
    found = [
        Problem(path, str(rec["reason"]), str(rec.get("detail", "")))
        for path, rec in zip(frame[schema.PATH], records, strict=True)
        if not rec["ok"]
    ]
    out = frame.copy()
    out[schema.SHARD] = [shard for shard, _, _ in entries]
    out[schema.SHARD_INDEX] = pd.Series([i for _, i, _ in entries], index=out.index, dtype="Int32")
    for key in RECORD_COLUMNS:
        out[key] = [rec.get(key) for rec in records]
    for key in (schema.ORIG_WIDTH, schema.ORIG_HEIGHT):
        # The label file's value (NIH's original size) wins; else the decoded file's.
        decoded = pd.Series([rec.get(key) for rec in records], index=out.index, dtype="Int32")
        out[key] = out[key].fillna(decoded) if key in out else decoded
    out = out[[bool(rec["ok"]) for rec in records]]
    dup = out[schema.CONTENT_HASH].duplicated(keep="first")
    if dup.any():
        first = dict(
            zip(out.loc[~dup, schema.CONTENT_HASH], out.loc[~dup, schema.PATH], strict=True)
        )
        found.extend(
            Problem(path, "duplicate image", f"same content as {first[digest]}")
            for path, digest in zip(
                out.loc[dup, schema.PATH], out.loc[dup, schema.CONTENT_HASH], strict=True
            )
        )
        out = out[~dup]
    return out, found


def keep_twins_together(
    frame: pd.DataFrame, cache_url: str, spec: ImageSpec, shard_size: int, settings: Settings
) -> tuple[pd.DataFrame, Twins]:
    """``frame`` with twins (and their patients) in one split, their pixels where it reads."""
    split, twins = keep_together(frame)
    if not twins.moved:
        cache.remove_unplanned(cache_url, [], settings, moved=True)
        return frame, twins
    log.info("%d image(s) moved split to sit with their twins", len(twins.moved))
    out = frame.assign(**{schema.SPLIT: split})
    moved = out[out[schema.IMAGE_ID].isin(twins.moved)]
    entries = list(
        zip(
            moved[schema.SPLIT], moved[schema.IMAGE_ID], moved[schema.PATH], moved["stamp"],
            strict=True,
        )
    )  # fmt: skip
    source = cache.CacheReader(cache_url, settings)
    rows = moved.set_index(schema.IMAGE_ID)
    plans = cache.plan_shards(entries, spec, shard_size, tag=cache.MOVED)
    cache.remove_unplanned(cache_url, plans, settings, moved=True)
    for plan in plans:
        if cache.load_done(cache_url, plan, settings) is None:
            picked = rows.loc[list(plan.image_ids)]
            shards = zip(picked[schema.SHARD], picked[schema.SHARD_INDEX], strict=True)
            arrays = [source.image(str(shard), int(index)) for shard, index in shards]
            records = [{"ok": True, "index": k} for k in range(len(arrays))]
            cache.write_shard(cache_url, plan, arrays, records, spec.size, settings)
        where = out[schema.IMAGE_ID].isin(plan.image_ids)
        position = {image_id: k for k, image_id in enumerate(plan.image_ids)}
        out.loc[where, schema.SHARD] = plan.npy
        out.loc[where, schema.SHARD_INDEX] = out.loc[where, schema.IMAGE_ID].map(position)
    return out, twins
