"""The slow lane for heavy decodes: one at a time, and at most a share of one core.

Decoding a 36-megapixel RGBA PNG takes as long as sixty 1024 px radiographs, and such a file
weighs 140 KB: one client posting them would take the CPU from everyone else. Uploads whose
decode would need more than ``PNEUMO_HEAVY_DECODE_MB`` (read from the header) are decoded by
this lane's single thread, which after each decode pauses so that it works at most
``PNEUMO_HEAVY_DECODE_SHARE`` of the time (0.5: half of one core). Heavy uploads are still
answered, later when there are many; the other requests keep the rest of the machine.
(A lower OS priority for the thread was measured too: it made no difference, since the
thread holds the GIL at times and the others then wait for it.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class HeavyLane:
    def __init__(self, share: float) -> None:
        self.share = share
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pneumo-heavy")

    def _paced(self, job: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return job()
        finally:
            if self.share < 1:
                time.sleep((time.perf_counter() - start) * (1 / self.share - 1))

    def submit(self, job: Callable[[], T]) -> Future[T]:
        return self._executor.submit(self._paced, job)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
