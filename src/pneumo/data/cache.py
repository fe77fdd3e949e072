"""The image cache: every image decoded once into fixed-size shards of uint8 arrays.

Layout of a cache folder (any fsspec URL)::

    spec.json                 the ImageSpec the shards were made with
    train-00000.npy           uint8 array (n, size, size), n <= shard_size
    train-00000.json          sidecar: the shard's key, image ids and per-image records

A shard belongs to one split, so a reader that must not see the test split never opens a test
shard. Shards are written atomically, the ``.npy`` before its sidecar; a shard counts as done only
when its sidecar exists and carries the key computed from the spec and the inputs (image ids,
source URLs, sizes and modification stamps). So a re-run with the same inputs decodes nothing, an
interrupted run resumes at the first unfinished shard, and changed parameters rebuild.
Training reads shards with ``np.load(mmap_mode="r")`` locally, or streams them from object storage.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from pneumo import paths, storage
from pneumo.preprocess import ImageSpec
from pneumo.settings import Settings

# Part of every shard's key: a shard built by another format is rebuilt. 2: records carry the
# perceptual hash.
FORMAT = 2
MOVED = "moved-"  # tag of the shards holding images moved to sit with their twins


@dataclass(frozen=True)
class ShardPlan:
    name: str  # "train-00000"
    image_ids: tuple[str, ...]
    urls: tuple[str, ...]
    stamps: tuple[str, ...]  # size and modification stamp of each source file
    key: str

    @property
    def npy(self) -> str:
        return f"{self.name}.npy"

    @property
    def sidecar(self) -> str:
        return f"{self.name}.json"


def plan_shards(
    entries: list[tuple[str, str, str, str]], spec: ImageSpec, shard_size: int, tag: str = ""
) -> list[ShardPlan]:
    """Cut ``(split, image_id, url, stamp)`` entries, sorted, into shards of one split each,
    named ``<split>-<tag><NNNNN>``."""
    plans: list[ShardPlan] = []
    spec_json = json.dumps({"format": FORMAT, **spec.to_dict()}, sort_keys=True)
    by_split: dict[str, list[tuple[str, str, str]]] = {}
    for split, image_id, url, stamp in sorted(entries):
        by_split.setdefault(split, []).append((image_id, url, stamp))
    for split, items in by_split.items():
        for k, start in enumerate(range(0, len(items), shard_size)):
            chunk = items[start : start + shard_size]
            ids, urls, stamps = (tuple(col) for col in zip(*chunk, strict=True))
            digest = hashlib.sha256(spec_json.encode())
            for item in chunk:
                digest.update("\0".join(item).encode())
                digest.update(b"\n")
            name = f"{split}-{tag}{k:05d}"
            plans.append(ShardPlan(name, ids, urls, stamps, digest.hexdigest()))
    return plans


def load_done(
    cache_url: str, plan: ShardPlan, settings: Settings | None = None
) -> list[dict[str, Any]] | None:
    """The records of a finished shard, or None when it must be (re)built."""
    sidecar = storage.join(cache_url, plan.sidecar)
    try:
        meta = json.loads(storage.read_text(sidecar, settings))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if meta.get("key") != plan.key or not storage.exists(
        storage.join(cache_url, plan.npy), settings
    ):
        return None
    records: list[dict[str, Any]] = meta["records"]
    return records


def write_shard(
    cache_url: str,
    plan: ShardPlan,
    arrays: list[np.ndarray],
    records: list[dict[str, Any]],
    size: int,
    settings: Settings | None = None,
) -> None:
    """Write the shard's array, then its sidecar (the sidecar marks it finished)."""
    stack = np.stack(arrays) if arrays else np.zeros((0, size, size), dtype=np.uint8)
    buf = io.BytesIO()
    np.save(buf, stack, allow_pickle=False)
    storage.write_bytes(storage.join(cache_url, plan.npy), buf.getvalue(), settings)
    meta = {"key": plan.key, "count": len(arrays), "records": records}
    storage.write_text(storage.join(cache_url, plan.sidecar), json.dumps(meta), settings)


def write_spec(cache_url: str, spec: ImageSpec, settings: Settings | None = None) -> None:
    storage.write_text(
        storage.join(cache_url, paths.CACHE_SPEC), json.dumps(spec.to_dict()), settings
    )


def remove_unplanned(
    cache_url: str, plans: list[ShardPlan], settings: Settings | None = None, *, moved: bool = False
) -> int:
    """Delete shards that no longer belong to the cache (e.g. a split that shrank).

    The shards of images moved to sit with their twins (``<split>-moved-NNNNN``) are planned
    after the others, so each kind is tidied against its own plans (``moved``).
    """
    wanted = {p.npy for p in plans} | {p.sidecar for p in plans} | {paths.CACHE_SPEC}
    stale = [
        n
        for n in storage.listdir(cache_url, settings)
        if n not in wanted and (f"-{MOVED}" in n) == moved and n != paths.CACHE_SPEC
    ]
    for name in stale:
        storage.remove(storage.join(cache_url, name), settings)
    return len(stale)


class CacheReader:
    """Reads cached images by shard name and index; keeps the last few shards open."""

    def __init__(self, cache_url: str, settings: Settings | None = None, keep: int = 4) -> None:
        self.url = cache_url
        self.settings = settings
        self.keep = keep
        self._open: dict[str, np.ndarray] = {}
        self.spec = ImageSpec(
            **json.loads(storage.read_text(storage.join(cache_url, paths.CACHE_SPEC), settings))
        )

    def shard(self, name: str) -> np.ndarray:
        """The whole shard ``name`` ("train-00000.npy"): memory-mapped when local."""
        if name not in self._open:
            url = storage.join(self.url, name)
            if storage.is_remote(url):
                array = np.load(io.BytesIO(storage.read_bytes(url, self.settings)))
            else:
                array = np.load(storage.strip_file_scheme(url), mmap_mode="r")
            if len(self._open) >= self.keep:
                self._open.pop(next(iter(self._open)))
            self._open[name] = array
        return self._open[name]

    def image(self, shard: str, index: int) -> np.ndarray:
        return np.asarray(self.shard(shard)[index])
