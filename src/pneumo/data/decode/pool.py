"""Decode image files in parallel, in input order, for the cache builder.

Workers are forked processes (one per core by default): decoding a PNG is CPU-bound and
Pillow holds the GIL while it inflates. Each worker reads the file once, hashes the bytes (to
find duplicate images), decodes and resizes, and returns the array with a small record.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

import numpy as np

from pneumo import storage
from pneumo.data.decode.failures import ImageDecodeError
from pneumo.data.decode.image import decode
from pneumo.data.near_duplicates import perceptual_hash
from pneumo.preprocess import ImageSpec

Record = dict[str, Any]


def decode_file(url: str, spec: ImageSpec) -> tuple[Record, np.ndarray | None]:
    """One file → (record, pixels); a file that cannot be used gives ``ok: False`` and a reason."""
    try:
        data = storage.read_bytes(url)
    except FileNotFoundError:
        return {
            "ok": False,
            "reason": "missing file",
            "detail": "file vanished while it was being read",
            "kind": "unreadable",
        }, None
    except OSError as exc:
        return {
            "ok": False,
            "reason": "unreadable file",
            "detail": str(exc),
            "kind": "unreadable",
        }, None
    digest = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    try:
        out = decode(data, spec)
    except ImageDecodeError as exc:
        reason = exc.reason.split(":", 1)[0].split(" (", 1)[0]
        failure = {"ok": False, "reason": reason, "detail": str(exc), "kind": exc.kind}
        return {**failure, "content_hash": digest}, None
    pixels = out.pixels
    record: Record = {
        "ok": True,
        "content_hash": digest,
        "perceptual_hash": perceptual_hash(pixels),
        "src_mode": out.src_mode,
        "orig_width": out.orig_width,
        "orig_height": out.orig_height,
        "mean_intensity": round(float(pixels.mean()), 3),
        "std_intensity": round(float(pixels.std()), 3),
    }
    return record, pixels


def worker_count(requested: int) -> int:
    if requested > 0:
        return requested
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def decode_many(
    urls: Iterable[str], spec: ImageSpec, workers: int, total: int, *, clean: bool = False
) -> Iterator[tuple[Record, np.ndarray | None]]:
    """Decode ``urls`` on ``workers`` processes, yielding results in input order.

    Workers are forked from this process, or with ``clean`` from a fresh server process
    (``forkserver``), for callers whose process already runs threads (ONNX Runtime's) that a
    plain fork could copy mid-lock.
    """
    task = partial(decode_file, spec=spec)
    if workers <= 1 or total <= 2:
        yield from map(task, urls)
        return
    methods = multiprocessing.get_all_start_methods()
    preferred = ("forkserver", "spawn") if clean else ("fork", "spawn")
    method = next(m for m in preferred if m in methods)
    ctx = multiprocessing.get_context(method)
    chunk = max(1, min(16, total // (workers * 8)))
    with ctx.Pool(workers) as pool:
        yield from pool.imap(task, urls, chunksize=chunk)
