"""Server-side micro-batching: concurrent requests share one ONNX Runtime call.

Each request decodes its image in a worker thread, then submits its pixels. One
consumer task takes the first waiting item and gathers more, without waiting when nothing else
is on its way (so a lone request pays no added latency), and for at most ``max_wait`` while
other requests are still decoding (so a burst fills a batch). The batch runs in a dedicated
thread, so the event loop keeps accepting requests meanwhile; the next batch forms from what
arrived during the previous one. Items remember the model they were preprocessed for: after
a hot swap, in-flight items still run on the model they were prepared for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from pneumo.serving.model import LoadedModel, Score


@dataclass
class _Item:
    array: np.ndarray  # uint8 (1, S, S)
    model: LoadedModel
    future: asyncio.Future[Score] = field(repr=False)
    explain: bool = False  # compute its activation map too


class MicroBatcher:
    def __init__(
        self,
        max_batch: int,
        max_wait_s: float,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._preparing = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pneumo-ort")
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def preparing(self) -> Iterator[None]:
        """Mark a request as decoding, so a forming batch may wait for it."""
        self._preparing += 1
        try:
            yield
        finally:
            self._preparing -= 1

    async def submit(self, array: np.ndarray, model: LoadedModel, explain: bool = False) -> Score:
        future: asyncio.Future[Score] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(array, model, future, explain))
        return await future

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pneumo-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.future.done():
                item.future.set_exception(RuntimeError("the service is shutting down"))
        self._executor.shutdown(wait=True)

    async def _gather(self) -> list[_Item]:
        loop = asyncio.get_running_loop()
        items = [await self._queue.get()]
        deadline = loop.time() + self.max_wait_s
        while len(items) < self.max_batch:
            if not self._queue.empty():
                items.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if self._preparing == 0 or remaining <= 0:
                break
            try:
                items.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return items

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._gather()
            groups: dict[int, list[_Item]] = {}
            for item in items:
                groups.setdefault(id(item.model), []).append(item)
            for group in groups.values():
                model = group[0].model
                batch = np.concatenate([item.array for item in group])
                flags = [item.explain for item in group]
                start = loop.time()
                try:
                    scores = await loop.run_in_executor(self._executor, model.score, batch, flags)
                except Exception as exc:  # the model failed: every waiting request hears why
                    for item in group:
                        if not item.future.done():
                            item.future.set_exception(exc)
                    continue
                if self.on_batch is not None:
                    self.on_batch(len(group), loop.time() - start)
                for item, score in zip(group, scores, strict=True):
                    if not item.future.done():
                        item.future.set_result(score)
