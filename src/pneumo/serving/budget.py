"""The service's memory budget for decoding: concurrent decodes wait instead of piling up.

Every upload's decode cost is read from its header (:func:`pneumo.data.decode.header.
read_header`) before a pixel is decoded. One that could never fit the budget is refused (422
``image_too_large``); the others reserve their cost and wait while the decodes in flight hold
the rest, so sixteen hostile uploads at once cost what the budget allows, not sixteen times it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class DecodeBudget:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._cv = asyncio.Condition()

    def fits(self, need: int) -> bool:
        return need <= self.capacity

    @contextlib.asynccontextmanager
    async def reserve(self, need: int) -> AsyncIterator[None]:
        """Hold ``need`` bytes of the budget for the block (waiting until they are free)."""
        need = min(need, self.capacity)
        async with self._cv:
            await self._cv.wait_for(lambda: self.used + need <= self.capacity)
            self.used += need
        try:
            yield
        finally:
            async with self._cv:
                self.used -= need
                self._cv.notify_all()
