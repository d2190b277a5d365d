"""System 2 over RPC with evaluations longer than one n_batch chunk: the helper decodes them a
chunk at a time, so the deadline (rpc_timeout) is per chunk of progress and a cancel returns
between chunks.

Loopback only, through tests/support/delay_proxy.py: the model loads and makes its context over a
fast link, then the link is capped at RATE bytes/s, a slowness that ggml-rpc's pipelining cannot
hide: each chunk of PROMPT sends ~20 kB (~0.1 s), the ~30 of them 3 s at least. The assertions
lean on that floor and on counts (evals answered, bytes sent, helper processes), with wide margins
for a loaded machine. (Replies over 1 MiB: tests/cpp/core_tests.cpp.)
"""
from __future__ import annotations

import time

import pytest

import fsgen
from delay_proxy import DelayProxy
from rpc_server_process import RpcServer, helper_children

RATE = 200_000
N_BATCH = 16
LONG = dict(n_ctx=1024, n_threads=1, n_batch=N_BATCH)
PROMPT = " ".join(f"word{i} and" for i in range(100))  # ~480 tokens: ~30 chunks of 16
SHORT_PROMPT = "hello world"
RPC_TIMEOUT = 1.5  # a chunk here takes ~0.1 s; the whole prompt at least 3 s
MIDWAY_BYTES = 50_000  # sent to the server: two or three chunks (~20 kB each) of the prompt


@pytest.fixture(scope="module")
def server():
    s = RpcServer()
    yield s
    s.kill()


@pytest.fixture(scope="module")
def expected(tiny_large):
    """The local model's greedy tokens for PROMPT and SHORT_PROMPT (same n_batch)."""
    with fsgen.Model(tiny_large, **LONG) as local:
        assert len(local.tokenize(PROMPT)) > 25 * N_BATCH
        return {p: local.generate(p, max_tokens=8).tokens for p in (PROMPT, SHORT_PROMPT)}


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.02)


def test_a_long_prompt_over_a_slow_link_outlasts_rpc_timeout(server, tiny_large, expected):
    with DelayProxy(server.port) as proxy:
        with fsgen.Model(tiny_large, rpc=[proxy.endpoint], rpc_timeout=RPC_TIMEOUT, **LONG) as remote:
            remote.generate(SHORT_PROMPT, max_tokens=1)  # its context, over the fast link
            proxy.set_rate(RATE)
            got = remote.generate(PROMPT, max_tokens=8)
            assert got.tokens == expected[PROMPT]
            # The prompt alone took longer than rpc_timeout: the deadline restarted at each chunk.
            assert got.stats["prompt_seconds"] > RPC_TIMEOUT
            assert not remote.rpc_stats()["lost"]


def test_cancel_mid_eval_returns_between_chunks_and_keeps_the_context(server, tiny_small, tiny_large, expected):
    model_bytes = tiny_large.stat().st_size
    with DelayProxy(server.port) as proxy:
        with fsgen.Pair(tiny_small, tiny_large, large_rpc=[proxy.endpoint], rpc_timeout=30, **LONG) as pair:
            pair.generate(SHORT_PROMPT, method="large", max_tokens=1)  # its context, over the fast link
            proxy.set_rate(RATE)
            helpers = helper_children()
            loaded = proxy.bytes()[0]
            evals = pair.large.rpc_stats()["evals"]
            stream = pair.stream(PROMPT, method="large", max_tokens=8)
            wait_until(lambda: proxy.bytes()[0] > loaded + MIDWAY_BYTES, 20, "the prompt's first chunks")
            asked = time.monotonic()
            stream.cancel()
            stream.close()
            waited = time.monotonic() - asked
            assert stream.result.finish_reason == "cancelled" and stream.result.stats["n_tokens"] == 0
            # The prompt's eval was stopped part way (answered as cancelled, not decoded to the end)...
            assert pair.large.rpc_stats()["evals"] == evals
            # ...within a chunk or two (~0.1 s each); the ~25 chunks left would take 3.5 s at least.
            assert waited < 2, f"the cancel took {waited:.2f} s"
            # The remote context holds a consistent prefix: the next calls give the local tokens,
            # from the same helper, and no weights travel again.
            proxy.set_rate(0)
            sent = proxy.bytes()[0]
            assert pair.generate(PROMPT, method="large", max_tokens=8).tokens == expected[PROMPT]
            assert pair.generate(SHORT_PROMPT, method="large", max_tokens=8).tokens == expected[SHORT_PROMPT]
            assert proxy.bytes()[0] - sent < model_bytes / 2
            assert not pair.large_lost and helper_children() == helpers


def test_a_chunk_past_the_deadline_keeps_the_weights_when_the_server_answers(server, tiny_small, tiny_large,
                                                                               expected):
    model_bytes = tiny_large.stat().st_size
    grace = 2.5  # rpc_timeout: the late answer must come within as much again after the error
    with DelayProxy(server.port) as proxy:
        with fsgen.Pair(tiny_small, tiny_large, large_rpc=[proxy.endpoint], rpc_timeout=grace, **LONG) as pair:
            helpers = helper_children()
            stream = pair.stream(SHORT_PROMPT, method="large", max_tokens=200)
            with pytest.raises(fsgen.GenerationError, match="rpc_timeout") as info:
                for i, _ in enumerate(stream):
                    if i == 3:
                        proxy.hold()  # this token's eval waits past the deadline
            assert "given up" in str(info.value)
            assert pair.large_lost  # for now: the call is still running there
            with pytest.raises(fsgen.GenerationError, match="lost for now"):
                pair.generate(SHORT_PROMPT, method="large", max_tokens=4)
            assert pair.generate(SHORT_PROMPT, method="small", max_tokens=4).stats["n_tokens"] == 4
            sent = proxy.bytes()[0]
            proxy.release()  # the server answers the late chunk, within the grace (rpc_timeout more)
            wait_until(lambda: not pair.large_lost, grace, "System 2's return")
            assert helper_children() == helpers
            assert pair.generate(SHORT_PROMPT, method="large", max_tokens=8).tokens == expected[SHORT_PROMPT]
            assert proxy.bytes()[0] - sent < model_bytes / 2  # the weights stayed on the server


def test_server_killed_mid_eval(tiny_small, tiny_large):
    server = RpcServer()
    try:
        with DelayProxy(server.port) as proxy:
            with fsgen.Pair(tiny_small, tiny_large, large_rpc=[proxy.endpoint], rpc_timeout=10, **LONG) as pair:
                pair.generate(SHORT_PROMPT, method="large", max_tokens=1)
                proxy.set_rate(RATE)
                loaded = proxy.bytes()[0]
                stream = pair.stream(PROMPT, method="large", max_tokens=8)
                wait_until(lambda: proxy.bytes()[0] > loaded + MIDWAY_BYTES, 20, "the prompt's first chunks")
                killed = time.monotonic()
                server.kill()
                with pytest.raises(fsgen.GenerationError, match="lost"):
                    list(stream)
                assert time.monotonic() - killed < 5  # at once (the connection breaks), not at rpc_timeout
                assert pair.large_lost and helper_children() == []
                assert pair.generate(SHORT_PROMPT, method="small", max_tokens=8).stats["n_tokens"] == 8
    finally:
        server.kill()
