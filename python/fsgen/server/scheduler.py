"""First come, first served: one generation runs on the loaded models, the others wait in order.

`max_queue` bounds the requests waiting (not the one running); a full queue refuses at once. A
waiter whose client leaves is removed from the line (its task is cancelled while it awaits).
Everything here runs on the event loop thread.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Optional


class QueueFull(Exception):
    """No room in the line: the caller answers 503 with Retry-After."""


class ShuttingDown(Exception):
    """The server is stopping: no new generation starts."""


class Scheduler:
    def __init__(self, max_queue: int):
        self.max_queue = max_queue
        self._waiters: deque[asyncio.Future] = deque()
        self._busy = False
        self._closed = False

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    @property
    def busy(self) -> bool:
        return self._busy

    async def acquire(self) -> None:
        """Wait for the turn. Raises QueueFull, ShuttingDown; cancellation leaves the line."""
        if self._closed:
            raise ShuttingDown()
        if not self._busy and not self._waiters:
            self._busy = True
            return
        if self.waiting >= self.max_queue:
            raise QueueFull()
        future = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                self.release()  # granted just as the client left: pass the turn on
            else:
                try:
                    self._waiters.remove(future)
                except ValueError:
                    pass
            raise

    def release(self) -> None:
        """The running generation has finished: the next waiter in line starts."""
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                return
        self._busy = False

    def close(self) -> None:
        """Refuse new requests and fail every waiter (server shutdown)."""
        self._closed = True
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_exception(ShuttingDown())

    def snapshot(self) -> tuple[bool, int]:
        return self._busy, self.waiting


async def acquire_or_cancel(scheduler: Scheduler, disconnected: asyncio.Event) -> Optional[bool]:
    """acquire(), unless the client leaves first: True when granted, None when the client left."""
    acquiring = asyncio.ensure_future(scheduler.acquire())
    leaving = asyncio.ensure_future(disconnected.wait())
    try:
        done, _ = await asyncio.wait({acquiring, leaving}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        acquiring.cancel()
        leaving.cancel()
        raise
    leaving.cancel()
    if acquiring in done:
        acquiring.result()  # raises QueueFull / ShuttingDown
        return True
    acquiring.cancel()
    try:
        await acquiring
    except asyncio.CancelledError:
        pass
    except (QueueFull, ShuttingDown):
        pass
    return None
