"""What a generation gives back: Result (text, tokens, stats, trace), streamed Chunks, Stream."""
from __future__ import annotations

import enum
from typing import Iterator, NamedTuple, Optional, TypedDict

import numpy as np

from . import _core

_WAIT_SLICE = 0.1  # seconds between checks for KeyboardInterrupt

# The core's enums and list of statistics, so that Python keeps no copy of its own.
Source = enum.IntEnum("Source", {name.upper(): value for name, value in _core.sources().items()},
                      module=__name__)
Source.__doc__ = """Who wrote a token: SYSTEM1 (the small model alone), SYSTEM2 (the large model alone),
COMBINED (both: contrastive decoding, proxy tuning)."""

DraftSource = enum.IntEnum("DraftSource", {name.upper(): value for name, value in _core.draft_sources().items()},
                           module=__name__)
DraftSource.__doc__ = """Where drafts come from: NONE (not a draft token), MODEL (System 1's drafts), NGRAM
(n-gram lookup in the prompt and the output), AUTO (as an option: the better of both each round).
The values of ``Trace.draft_source`` and ``Drafts.source``."""

Stats = TypedDict("Stats", {name: int if kind == "int" else float for name, kind in _core.stat_fields()})
Stats.__module__ = __name__
Stats.__doc__ = """``Result.stats``: a plain dict with the core's statistics (0 where one does not apply);
the keys and their meaning are listed in docs/API.md."""


class Drafts:
    """Per speculative round: the draft tokens the verifier judged, how many it accepted, and who
    drafted them."""

    length: np.ndarray    #: int32, draft tokens judged per round (a draft cut by the end of generation: up to it)
    accepted: np.ndarray  #: int32, of those, accepted by the verifier
    source: np.ndarray    #: int8, DraftSource values: MODEL (System 1's draft) or NGRAM

    def __init__(self, length: np.ndarray, accepted: np.ndarray, source: Optional[np.ndarray] = None):
        self.length = length
        self.accepted = accepted
        self.source = source if source is not None else np.full(len(length), DraftSource.MODEL, dtype=np.int8)

    def __len__(self) -> int:
        return len(self.length)

    def __repr__(self) -> str:
        return f"Drafts(rounds={len(self)}, drafted={int(self.length.sum())}, accepted={int(self.accepted.sum())})"


class Trace:
    """One row per generated token (numpy arrays of one length); see docs/API.md."""

    FIELDS = ("token", "source", "entropy", "top1", "margin", "system2_called", "mismatch", "text_offset",
              "draft_source")

    token: np.ndarray           #: int32
    source: np.ndarray          #: int8, Source values
    entropy: np.ndarray         #: float32, nats, System 1's next-token distribution (NaN where it did not run)
    top1: np.ndarray            #: float32, System 1's top-1 probability
    margin: np.ndarray          #: float32, p1 - p2
    system2_called: np.ndarray  #: bool, System 2 ran to choose this token
    mismatch: np.ndarray        #: bool, System 1's own choice was overruled (False where not measured)
    text_offset: np.ndarray     #: int32, character offset of the token's text in Result.text
    draft_source: np.ndarray    #: int8, DraftSource values: NONE (not a draft token), MODEL or NGRAM (an accepted draft)
    drafts: Drafts              #: per speculative round

    def __init__(self, arrays: dict):
        self.token = arrays["token"]
        self.source = arrays["source"]
        self.entropy = arrays["entropy"]
        self.top1 = arrays["top1"]
        self.margin = arrays["margin"]
        self.system2_called = arrays["system2_called"].view(np.bool_)
        self.mismatch = arrays["mismatch"].view(np.bool_)
        self.text_offset = arrays["text_offset"]
        self.draft_source = arrays["draft_source"]
        self.drafts = Drafts(arrays["draft_length"], arrays["draft_accepted"], arrays["draft_round_source"])

    def __len__(self) -> int:
        return len(self.token)

    def to_dict(self) -> dict:
        """The per-token fields as a dict of arrays."""
        return {name: getattr(self, name) for name in self.FIELDS}

    def __repr__(self) -> str:
        return f"Trace(tokens={len(self)}, system2={int((self.source != 0).sum())}, mismatches={int(self.mismatch.sum())})"


class Result:
    """What a generation returns: ``text``, ``tokens``, ``finish_reason`` ("eog", "stop", "length",
    "cancelled"), ``stats`` (a :class:`Stats` dict), ``trace`` (None unless ``trace=True``) and
    ``cost_table`` (the id of the cost table its decisions priced from; "" if it never started)."""

    __slots__ = ("text", "tokens", "finish_reason", "stats", "trace", "cost_table")

    def __init__(self, core_result):
        self.text: str = core_result.text
        self.tokens: list[int] = list(core_result.tokens)
        self.finish_reason: str = core_result.finish_reason
        self.stats: Stats = core_result.stats
        self.trace: Optional[Trace] = Trace(core_result.take_trace()) if core_result.has_trace else None
        self.cost_table: str = core_result.cost_table

    def __repr__(self) -> str:
        text = self.text if len(self.text) < 60 else self.text[:57] + "..."
        return f"Result(text={text!r}, n_tokens={len(self.tokens)}, finish_reason={self.finish_reason!r})"


class Chunk(NamedTuple):
    """A piece of streamed text, who wrote the token that completed it, and that token; ``draft``:
    where that token was an accepted draft, who drafted it: ``"model"`` (System 1) or ``"ngram"``
    (else None; ``trace.draft_source`` of that token)."""

    text: str
    source: Source
    token: int
    draft: Optional[str] = None


# Chunk.draft's values by DraftSource: "model", "ngram" (None for NONE).
_DRAFT_NAMES = {int(d): d.name.lower() for d in DraftSource if d not in (DraftSource.NONE, DraftSource.AUTO)}


class Stream:
    """Iterate to get Chunks as they are produced; afterwards ``result`` holds the Result.

    ``cancel()`` (from any thread) stops the generation at its next decode step; leaving the
    iteration early frees its work.
    """

    def __init__(self, job):
        self._job = job
        self._chunks: Optional[Iterator[Chunk]] = None  # for next(stream)
        self.result: Optional[Result] = None

    def __next__(self) -> Chunk:
        if self._chunks is None:
            self._chunks = self._iterate(close_when_left=False)
        return next(self._chunks)

    def __iter__(self) -> Iterator[Chunk]:
        # A generator: leaving a for-loop early drops it, and its `finally` frees the work.
        return self._iterate(close_when_left=True)

    def _iterate(self, close_when_left: bool) -> Iterator[Chunk]:
        job = self._job
        finished = False
        try:
            while job is not None and self._job is not None:
                chunk = job.next_chunk(_WAIT_SLICE)
                if chunk is not None:
                    yield Chunk(chunk.text, Source(chunk.source), chunk.token, _DRAFT_NAMES.get(chunk.draft))
                elif job.done():
                    self._job = None
                    finished = True
                    self.result = Result(job.take_result())
                    return
        finally:
            if not finished and close_when_left:
                self.close()

    def cancel(self) -> None:
        """Stop the generation at its next decode step (any thread)."""
        job = self._job
        if job is not None:
            job.cancel()

    def close(self) -> None:
        """Stop and free the generation; ``result`` then holds what was generated.

        Raises
        ------
        FsgenError
            The error the generation ended with, if it failed before it was stopped.
        """
        job, self._job = self._job, None
        if job is not None:
            job.cancel()
            self.result = Result(job.take_result())

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # nothing can be reported from a finalizer; close() raises it otherwise
            pass


def run_job(job) -> Result:
    """Wait for a job in short slices (so Ctrl-C works) and return its Result."""
    try:
        while not job.wait(_WAIT_SLICE):
            pass
    except KeyboardInterrupt:
        job.cancel()  # stops at the next decode step; the pair stays usable
        job.wait(60.0)
        raise
    return Result(job.take_result())
