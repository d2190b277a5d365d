"""Speculative rounds: the residual draw takes time linear in the vocabulary, draft lengths are
capped by what one verify batch holds, and acceptances are counted by what System 2 agreed with
(an accepted end-of-generation token or a stop string inside a draft is no rejection)."""
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


# ---- acceptances counted by what System 2 agreed with ----

@pytest.fixture(scope="module")
def eos_model(tiny_factory):
    # Greedy text walks the successor chain and ends after "e" (<|im_end|> follows it): after "x",
    # the 13th token, inside the second 8-token draft.
    return tiny_factory("tiny_eos", eos_after="e", seed=0)


def test_accepted_end_of_generation_is_no_rejection(eos_model):
    with fsgen.Pair(eos_model, eos_model, n_ctx=256, n_threads=1) as p:  # the drafter is the target
        r = p.generate("x", method="speculative", draft_max=8, max_tokens=64, trace=True)
        planner = p.planner
    assert r.finish_reason == "eog"
    d = r.trace.drafts
    assert len(d) >= 1 and r.stats["drafted"] > 0
    assert r.stats["accepted"] == r.stats["drafted"], r.stats  # the end-of-generation draft included
    assert r.stats["acceptance_rate"] == 1.0
    assert (d.accepted == d.length).all(), (d.length, d.accepted)
    assert r.stats["mismatches"] == 0
    # The end-of-generation token came from a draft: it is counted, though it is not output.
    assert r.stats["accepted"] == int((r.trace.source == 0).sum()) + 1
    assert planner["rounds"] == len(d) and planner["rejections"] == 0, planner


def test_stop_string_inside_a_draft_is_no_rejection(tiny_small):
    with fsgen.Pair(tiny_small, tiny_small, n_ctx=256, n_threads=1) as p:
        free = p.generate("hello world", method="large", max_tokens=12)
        stop = free.text[3:5]  # reached inside the first draft
        r = p.generate("hello world", method="speculative", draft_max=8, max_tokens=12, stop=stop,
                       trace=True)
        planner = p.planner
    assert r.finish_reason == "stop"
    d = r.trace.drafts
    assert r.stats["drafted"] > 0 and (d.accepted == d.length).all(), (d.length, d.accepted)
    assert r.stats["acceptance_rate"] == 1.0, r.stats
    assert planner["rejections"] == 0, planner
