"""One request's generation, run off the event loop.

The core decodes on its own C++ thread; the Python API's stream waits for it with the GIL released.
A worker thread iterates that stream and hands each chunk to the event loop through an asyncio
queue, so the loop never blocks on decoding. cancel() (from the loop, e.g. when the client leaves)
stops the core at its next decode step; `finished` is set once the core is done with the models.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Optional

import fsgen

END = object()


def rpc_lost(runner) -> bool:
    """Whether the models on RPC servers are lost: a pair's System 2, or the one model. (Not from
    the event loop while a generation runs: the answer waits for the remote call in progress.)"""
    if isinstance(runner, fsgen.Pair):
        return runner.large_lost
    stats = runner.rpc_stats()
    return bool(stats and stats["lost"])


class Generation:
    def __init__(self, runner, call: dict, loop: asyncio.AbstractEventLoop, *, forward_chunks: bool = True,
                 prepare: Optional[Callable[[], Any]] = None):
        self._runner = runner
        self._call = call
        self._prepare = prepare  # run on the worker thread first: returns the runner to use
        self._loop = loop
        self._forward = forward_chunks
        self._queue: asyncio.Queue = asyncio.Queue()
        self._stream = None
        self._lock = threading.Lock()
        self._cancelled = False
        self.finished = asyncio.Event()
        self.result = None
        self.error: Optional[BaseException] = None
        self.rpc_lost = False  # with an error: whether models on RPC servers were lost
        self.sources = [0, 0, 0]  # tokens by fsgen.Source
        self._thread = threading.Thread(target=self._pump, name="fsgen-serve-generation", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _post(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def _pump(self) -> None:
        try:
            if self._prepare is not None:
                self._runner = self._prepare()
            stream = self._runner.stream(**self._call)
            with self._lock:
                self._stream = stream
                cancelled = self._cancelled
            if cancelled:
                stream.cancel()
            for chunk in stream:
                source = int(chunk.source)
                if 0 <= source < 3:
                    self.sources[source] += 1
                if self._forward and chunk.text:
                    self._post(chunk)
            self.result = stream.result
        except BaseException as exc:  # handed to the request's handler, which maps it to a status
            self.error = exc
            self.rpc_lost = rpc_lost(self._runner)  # asked here: the models are still this request's
        finally:
            self._post(END)
            try:
                self._loop.call_soon_threadsafe(self.finished.set)
            except RuntimeError:
                pass

    def cancel(self) -> None:
        """Stop at the next decode step (safe from any thread, any time)."""
        with self._lock:
            self._cancelled = True
            stream = self._stream
        if stream is not None:
            stream.cancel()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    async def next(self):
        """The next chunk, or END when the generation is over (then `result` or `error` is set)."""
        return await self._queue.get()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
