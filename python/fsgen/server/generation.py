"""One request's generation, run off the event loop.

The core decodes on its own C++ thread; the Python API waits for it with the GIL released. A worker
thread makes the call: for a streaming request it iterates the runner's stream and hands each chunk
to the event loop through an asyncio queue; otherwise it makes one runner.generate() call, so no
token passes through Python. Either way the loop never blocks on decoding. cancel() (from the loop,
e.g. when the client leaves) stops the core at its next decode step; `finished` is set once the
core is done with the models.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Optional

import fsgen

END = object()
# How often a non-streaming generation's cancel is repeated until the call is over (seconds).
CANCEL_REPEAT_SECONDS = 0.05


def rpc_lost(runner) -> bool:
    """Whether the models on RPC servers are lost: a pair's System 2, or the one model. (Not from
    the event loop while a generation runs: the answer waits for the remote call in progress.)"""
    if isinstance(runner, fsgen.Pair):
        return runner.large_lost
    stats = runner.rpc_stats()
    return bool(stats and stats["lost"])


class Generation:
    """runner.stream(**call) (``stream=True``: chunks come from next()) or runner.generate(**call)
    on a worker thread; next() gives END once it is over, with `result` or `error` set."""

    def __init__(self, runner, call: dict, loop: asyncio.AbstractEventLoop, *, stream: bool = True,
                 prepare: Optional[Callable[[], Any]] = None):
        self._runner = runner
        self._call = call
        self._prepare = prepare  # run on the worker thread first: returns the runner to use
        self._loop = loop
        self._streams = stream
        self._queue: asyncio.Queue = asyncio.Queue()
        self._stream = None
        self._lock = threading.Lock()
        self._cancelled = False
        self._over = False  # the runner's call has returned
        self.finished = asyncio.Event()
        self.result = None
        self.error: Optional[BaseException] = None
        self.rpc_lost = False  # with an error: whether models on RPC servers were lost
        self.sources = [0, 0, 0]  # streamed chunks by fsgen.Source
        self._thread = threading.Thread(target=self._work, name="fsgen-serve-generation", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _post(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def _work(self) -> None:
        try:
            if self._prepare is not None:
                self._runner = self._prepare()
            if self._streams:
                self.result = self._run_stream()
            else:
                self.result = self._runner.generate(**self._call)
        except BaseException as exc:  # handed to the request's handler, which maps it to a status
            self.error = exc
            self.rpc_lost = rpc_lost(self._runner)  # asked here: the models are still this request's
        finally:
            self._over = True
            self._post(END)
            try:
                self._loop.call_soon_threadsafe(self.finished.set)
            except RuntimeError:
                pass

    def _run_stream(self):
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
            if chunk.text:
                self._post(chunk)
        return stream.result

    def cancel(self) -> None:
        """Stop at the next decode step (safe from any thread, any time)."""
        with self._lock:
            self._cancelled = True
            stream = self._stream
        if stream is not None:
            stream.cancel()
        elif not self._streams:
            try:
                self._loop.call_soon_threadsafe(self._cancel_runner)
            except RuntimeError:  # the loop is closed: the process is ending
                self._runner.cancel()

    def _cancel_runner(self) -> None:
        # The core forgets a runner.cancel() that comes before its call starts (after validation and
        # calibration), so it is repeated until the call is over. Runs on the loop, which is also
        # where the next request gets its turn: no repeat reaches the next request's call.
        if self._over:
            return
        self._runner.cancel()
        self._loop.call_later(CANCEL_REPEAT_SECONDS, self._cancel_runner)

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    async def next(self):
        """The next chunk, or END when the generation is over (then `result` or `error` is set)."""
        return await self._queue.get()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
