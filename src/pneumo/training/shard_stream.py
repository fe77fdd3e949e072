"""Training from shards on object storage: a bounded local cache, filled ahead of the step.

Locally, shards are memory-mapped where they lie and an epoch visits the images in one global
random order. From a bucket that order would need every shard at once, so a streamed epoch
visits the shards in a seeded random order and shuffles the images within windows of a few
consecutive shards (as WebDataset and MosaicML's streaming do). The order depends on the seed
and the epoch only, so a killed run resumes onto exactly the batches it would have seen.

:class:`ShardPrefetcher` runs a thread in the training process that downloads, into a local
folder, the shards of the batches ahead of the step, and deletes each shard once no later batch
of the epoch needs it: at most ``keep`` shards lie on disk. The loader (and its workers) read a
shard from that folder when it is there and straight from the bucket when it is not yet, so a
slow download costs time, never correctness. Under DDP every rank takes its own shards of each
epoch's shard order, so it downloads only those, into its own folder.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import numpy as np

from pneumo import storage
from pneumo.processes import pid_alive
from pneumo.settings import Settings

log = logging.getLogger(__name__)


def fetching(folder: Path, name: str) -> Path:
    """The marker of a download in flight (loader processes wait for it rather than repeat it)."""
    return folder / f".{name}.fetching"


def window_of(keep: int) -> int:
    """Shards shuffled together: half the cache (so the next window downloads meanwhile), and
    at most 2 (what each loader process keeps in memory covers two windows)."""
    return min(2, max(1, keep // 2))


def streamed_order(
    shard_of: np.ndarray, seed: int, epoch: int, rank: int, world: int, per_rank: int, window: int
) -> np.ndarray:
    """This rank's ``per_rank`` dataset indices for ``epoch``: its shards in a seeded order,
    images shuffled within each window of ``window`` consecutive shards (wrapping round when
    the rank's shards hold fewer than ``per_rank`` images)."""
    gen = np.random.default_rng([seed, epoch, 7919])
    n_shards = int(shard_of.max()) + 1 if len(shard_of) else 0
    shards = gen.permutation(n_shards)
    mine = shards[rank::world] if n_shards >= world else shards[[rank % max(1, n_shards)]]
    members = [np.flatnonzero(shard_of == s) for s in mine]
    parts = [
        gen.permutation(np.concatenate(members[k : k + window]))
        for k in range(0, len(members), window)
    ]
    order = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if 0 < len(order) < per_rank:
        order = np.resize(order, per_rank)
    return order[:per_rank].astype(np.int64)


def _remove_abandoned(parent: Path) -> None:
    """Delete the folders of training processes that are gone (``pid-<pid>-rank-<r>``)."""
    for other in parent.glob("pid-*-rank-*"):
        pid = other.name.split("-")[1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(other, ignore_errors=True)


class ShardPrefetcher:
    """Keeps the shards of the next batches in ``folder``, at most ``keep`` of them."""

    def __init__(
        self, cache_url: str, folder: Path, names: list[str], keep: int, settings: Settings
    ) -> None:
        self.cache_url, self.folder, self.names = cache_url, folder, names
        self.keep, self.settings = max(2, keep), settings
        folder.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(folder.parent)
        self._cv = threading.Condition()
        self._needs: list[tuple[int, int, int]] = []  # (first batch, last batch, shard id)
        self._position = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="shard-prefetch", daemon=True)
        self._thread.start()

    def local(self, name: str) -> Path:
        return self.folder / name

    def plan(self, batches: list[list[int]], shard_of: np.ndarray) -> None:
        """The epoch's (remaining) batches: which shard each needs, first and last."""
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for b, batch in enumerate(batches):
            for sid in np.unique(shard_of[np.asarray(batch, dtype=np.int64)]).tolist():
                first.setdefault(sid, b)
                last[sid] = b
        with self._cv:
            self._needs = sorted((first[s], last[s], s) for s in first)
            self._position = 0
            self._evict()
            self._cv.notify_all()

    def advance(self) -> None:
        """One batch consumed: shards no later batch needs are deleted."""
        with self._cv:
            self._position += 1
            self._evict()
            self._cv.notify_all()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _wanted(self) -> set[int]:
        return {sid for _f, last, sid in self._needs if last >= self._position}

    def _evict(self) -> None:
        wanted = {self.names[s] for s in self._wanted()}
        for path in self.folder.glob("*.npy"):
            if path.name not in wanted:
                path.unlink(missing_ok=True)

    def _next(self) -> str | None:
        """The next shard to fetch, if the cache has room for it."""
        present = {p.name for p in self.folder.glob("*.npy")}
        upcoming = [self.names[s] for _f, last, s in self._needs if last >= self._position]
        held = sum(1 for name in upcoming if name in present)
        for name in upcoming:
            if name not in present:
                return name if held < self.keep else None
        return None

    def _run(self) -> None:
        while True:
            with self._cv:
                name = self._next()
                while name is None and not self._closed:
                    self._cv.wait(timeout=1.0)
                    name = self._next()
                if self._closed or name is None:
                    return
            try:
                self._fetch(name)
            except Exception as exc:  # the loader falls back to reading the bucket itself
                log.warning("prefetching shard %s failed (%s); reading it directly", name, exc)
                with self._cv:
                    self._cv.wait(timeout=5.0)

    def _fetch(self, name: str) -> None:
        marker = fetching(self.folder, name)
        marker.touch()
        try:
            data = storage.read_bytes(storage.join(self.cache_url, name), self.settings)
            with self._cv:
                if self._closed or name not in {self.names[s] for s in self._wanted()}:
                    return  # passed while downloading
                storage.write_bytes(str(self.local(name)), data)
        finally:
            marker.unlink(missing_ok=True)
