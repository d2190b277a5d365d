"""Regressions of speculative decoding (issue 9): the residual draw over a large vocabulary, and
draft lengths capped by what one verify batch holds."""
from __future__ import annotations

import time

import pytest

import fsgen

NO_TRUNCATION = dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0)
# As real models have (Qwen2.5: 151,936): a residual drawn by a linear lookup per candidate costs
# ~10^10 operations here.
LARGE_VOCAB_EXTRA = 150_000
LARGE_VOCAB_SHAPE = dict(n_layer=1, n_embd=32, n_head=2, n_head_kv=2, n_ff=64, extra_tokens=LARGE_VOCAB_EXTRA)


@pytest.fixture(scope="module")
def large_vocab_pair(tiny_factory):
    # The drafter skips ahead of the target's chain at a third of the steps: rejections, and with
    # them residual draws, at most rounds.
    small = tiny_factory("big_vocab_small", seed=0, **LARGE_VOCAB_SHAPE)
    large = tiny_factory("big_vocab_large", seed=1, chain_skip=0.3, **LARGE_VOCAB_SHAPE)
    with fsgen.Pair(small, large, n_ctx=128, n_threads=1, n_batch=32) as p:
        yield p


def best_time(fn, repeats=2):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def test_residual_draw_is_linear_in_the_vocabulary(large_vocab_pair):
    """No-truncation sampling (top_k=0, top_p=1, min_p=0) over a 150k vocabulary: a speculative run
    with rejections costs a few large-only runs, not minutes."""
    p = large_vocab_pair
    args = dict(max_tokens=24, **NO_TRUNCATION)
    t_large, _ = best_time(lambda: p.generate("hello world", method="large", seed=1, **args))
    t_spec, r = best_time(lambda: p.generate("hello world", method="speculative", draft_max=4, seed=1, **args))
    assert r.stats["drafted"] > r.stats["accepted"] > 0, r.stats  # rejections: residual draws
    # Per token, speculative samples up to 9 distributions where large-only samples one; the
    # quadratic draw took seconds per rejection.
    assert t_spec < 12 * t_large + 0.5, (t_spec, t_large, r.stats)


# ---- draft length capped by the verify batch ----

def test_fixed_draft_longer_than_the_batch(tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, n_ctx=256, n_threads=1, n_batch=8) as p:
        expected = p.generate("hello world", method="large", max_tokens=40)
        r = p.generate("hello world", method="speculative", draft_max=16, max_tokens=40, trace=True)
    assert r.tokens == expected.tokens
    assert r.stats["drafted"] > 0
    assert (r.trace.drafts.length <= 7).all(), r.trace.drafts.length  # 7 drafts + 1 bonus row = 8
