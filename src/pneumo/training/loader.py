"""Training data from the image cache: shards of the allowed splits only, never a PNG.

`ShardImages` opens only shards whose split it was given, so a run that is allowed
``("train", "val")`` cannot read a test image even by mistake (a test removes the test shards
and trains). Local shards are memory-mapped; shards on object storage are streamed, a few in
memory at a time, from the folder the prefetcher fills (`shard_stream`) or from the bucket.
Batches are gathered per shard with one fancy-index each (``__getitems__``), so the loader
costs little beyond a memory copy of uint8 pixels.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from pneumo import storage
from pneumo.data import schema
from pneumo.errors import DataError
from pneumo.settings import Settings, get_settings
from pneumo.training.shard_stream import fetching

# Streamed shards each loader process keeps in memory: a batch spans the shards of one
# shuffle window (at most 2, see shard_stream), or of two at a window's end.
STREAMED_IN_MEMORY = 4
PREFETCH_WAIT_S = 30.0  # for a download in flight; then the shard is read from the bucket


class ShardImages(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Images of ``splits`` from the cache at ``cache_url``, with their targets."""

    def __init__(
        self,
        manifest: pd.DataFrame,
        cache_url: str,
        splits: Sequence[str],
        targets: Sequence[str] = (schema.LABEL,),
        settings: Settings | None = None,
        local_dir: Path | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.splits = tuple(splits)
        rows = manifest[manifest[schema.SPLIT].isin(self.splits)].reset_index(drop=True)
        if rows.empty:
            raise DataError(f"the manifest has no images in split(s) {list(self.splits)}")
        self.frame = rows
        self.cache_url = cache_url
        self.local_dir = local_dir
        self.shard_names = sorted(rows[schema.SHARD].unique())
        for name in self.shard_names:
            if name.split("-", 1)[0] not in self.splits:
                raise DataError(f"shard {name} is not of split(s) {list(self.splits)}")
        shard_id = {n: i for i, n in enumerate(self.shard_names)}
        self.shard_of = rows[schema.SHARD].map(shard_id).to_numpy(np.int64)
        self.index_in_shard = rows[schema.SHARD_INDEX].to_numpy(np.int64)
        values = rows[list(targets)].astype("float32").fillna(0.0).to_numpy(np.float32, copy=True)
        self.targets = torch.from_numpy(values)
        self._arrays: list[np.ndarray] | None = None
        self._recent: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def labels(self) -> np.ndarray:
        return self.targets[:, 0].numpy()

    @property
    def streamed(self) -> bool:
        """The shards are on object storage: read a few at a time, never all at once."""
        return storage.is_remote(self.cache_url)

    def _shard(self, sid: int) -> np.ndarray:
        # Opened lazily, in whichever process reads first (each loader worker maps its own).
        if not self.streamed:
            if self._arrays is None:
                self._arrays = [self._open_local(name) for name in self.shard_names]
            return self._arrays[sid]
        if sid not in self._recent:
            self._recent[sid] = self._open_streamed(self.shard_names[sid])
            while len(self._recent) > STREAMED_IN_MEMORY:
                self._recent.popitem(last=False)
        self._recent.move_to_end(sid)
        return self._recent[sid]

    def _open_local(self, name: str) -> np.ndarray:
        url = storage.join(self.cache_url, name)
        array: np.ndarray = np.load(storage.strip_file_scheme(url), mmap_mode="r")
        return array

    def _open_streamed(self, name: str) -> np.ndarray:
        """From the prefetch folder when the shard is there, else from the bucket (in memory:
        the folder's bound belongs to the prefetcher alone)."""
        if self.local_dir is not None:
            # While the prefetcher is downloading this very shard, wait for it rather than
            # download it twice; a shard it has not started on is read from the bucket now.
            deadline = time.monotonic() + PREFETCH_WAIT_S
            while True:
                with contextlib.suppress(FileNotFoundError):  # deleted, or not there yet
                    local: np.ndarray = np.load(self.local_dir / name)
                    return local
                if not fetching(self.local_dir, name).exists() or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
        url = storage.join(self.cache_url, name)
        array: np.ndarray = np.load(io.BytesIO(storage.read_bytes(url, self.settings)))
        return array

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = self._shard(int(self.shard_of[i]))[self.index_in_shard[i]]
        return torch.from_numpy(np.array(pixels)), self.targets[i]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        first = self._shard(int(self.shard_of[idx[0]]))
        out = np.empty((len(idx), *first.shape[1:]), dtype=np.uint8)
        for sid in np.unique(self.shard_of[idx]):
            where = np.nonzero(self.shard_of[idx] == sid)[0]
            out[where] = self._shard(int(sid))[np.sort(self.index_in_shard[idx[where]])][
                np.argsort(np.argsort(self.index_in_shard[idx[where]]))
            ]
        return torch.from_numpy(out), self.targets[torch.from_numpy(idx)]


def collate_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """`__getitems__` already returns a stacked batch: pass it through."""
    pixels, targets = batch
    return pixels, targets


class EpochBatches:
    """A batch sampler whose batches are replaced each epoch.

    One DataLoader over it, with persistent workers, serves every epoch: the worker processes
    start once per run instead of once per epoch (on a GPU an epoch can take seconds, and
    restarting eight workers each time would leave it idle).
    """

    def __init__(self, batches: Iterable[list[int]] = ()) -> None:
        self.batches: list[list[int]] = list(batches)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(list(self.batches))

    def __len__(self) -> int:
        return len(self.batches)


def loader_workers(requested: int, world: int) -> int:
    """``requested`` if set (>= 0), else one per core left to this rank, at most 8."""
    if requested >= 0:
        return requested
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    return max(0, min(8, cores // world - 1))


def make_loader(
    ds: ShardImages, batches: Iterable[list[int]], workers: int = 0, pin: bool = False
) -> torch.utils.data.DataLoader[Any]:
    """Batches of uint8 pixels and targets; workers persist across epochs and prefetch."""
    extra: dict[str, Any] = {"persistent_workers": True, "prefetch_factor": 4} if workers else {}
    return torch.utils.data.DataLoader(
        ds,
        batch_sampler=batches,
        collate_fn=collate_batch,
        num_workers=workers,
        pin_memory=pin,
        **extra,
    )
