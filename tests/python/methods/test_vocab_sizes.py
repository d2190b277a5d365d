"""A pair whose vocabularies differ by a few entries (as Qwen2.5 0.5B and 7B: 151,936 and 152,064).

The large model here has 8 ids beyond the small one's vocabulary, and its successor chain makes a
detour through them (tinymodels' `extra_after`): greedy, it writes one every few tokens. Where the
large model decides alone (large-only, speculative verification) all of its ids count, and
System 1 reads a substitute for an id it lacks; where models are combined or consulted token by
token (fs, oracle, contrastive, proxy) only the shared ids are written.
"""
from __future__ import annotations

from collections import Counter

import pytest

import fsgen
from helpers import chi2_two_sample

CTX = dict(n_ctx=128, n_threads=1)
LARGE_SHAPE = dict(n_layer=4, n_embd=128, n_head=4, n_head_kv=2, n_ff=256, seed=1, extra_tokens=8,
                   extra_after=("@", ":", "B", "L", "9", "j"))
PROMPT = "hello world"
N_TOKENS = 40


@pytest.fixture(scope="module")
def large_extra(tiny_factory):
    return tiny_factory("vocab_large_extra", **LARGE_SHAPE)


@pytest.fixture(scope="module")
def pair(tiny_small, large_extra):
    with fsgen.Pair(tiny_small, large_extra, small_base=tiny_small, **CTX) as p:
        yield p


@pytest.fixture(scope="module")
def large_alone(large_extra):
    with fsgen.Model(large_extra, **CTX) as m:
        yield m


@pytest.fixture(scope="module")
def n_small(pair):
    n = pair.small.info["n_vocab"]
    assert pair.large.info["n_vocab"] == n + 8
    return n


def test_the_large_model_writes_ids_the_small_one_lacks(large_alone, n_small):
    tokens = large_alone.generate(PROMPT, max_tokens=N_TOKENS).tokens
    assert sum(t >= n_small for t in tokens) >= 4, tokens


@pytest.mark.parametrize("params", [{}, {"draft": "ngram"}])
def test_large_only_on_the_pair_is_the_large_model_alone(pair, large_alone, params):
    for sampling in ({}, dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=7)):
        expected = large_alone.generate(PROMPT, max_tokens=N_TOKENS, **sampling, **params)
        r = pair.generate(PROMPT, method="large", max_tokens=N_TOKENS, **sampling, **params)
        assert r.tokens == expected.tokens and r.text == expected.text


@pytest.mark.parametrize("params", [{"draft": "model", "draft_max": 4}, {"draft": "model"}, {"draft": "ngram"},
                                    {"draft": "auto"}])
def test_greedy_speculative_is_the_large_model(pair, large_alone, n_small, params):
    expected = large_alone.generate(PROMPT, max_tokens=N_TOKENS)
    r = pair.generate(PROMPT, method="speculative", max_tokens=N_TOKENS, trace=True, **params)
    assert r.tokens == expected.tokens
    assert r.text == expected.text
    assert any(t >= n_small for t in r.tokens)
    if "draft_max" in params:  # adaptive lengths follow measured speed: they may not draft at all
        # System 1 drafted after reading the ids it lacks (as substitutes), and drafts were accepted.
        assert r.stats["accepted"] > 0, r.stats


def test_a_small_model_with_more_ids_drafts_only_shared_ones(tiny_small, large_extra):
    """The other way round: System 1 has the extra ids; it drafts among those the large model has."""
    with fsgen.Pair(large_extra, tiny_small, **CTX) as p, fsgen.Model(tiny_small, **CTX) as large:
        expected = large.generate(PROMPT, max_tokens=N_TOKENS).tokens
        assert p.generate(PROMPT, method="speculative", draft="model", draft_max=4, max_tokens=N_TOKENS).tokens == expected
        sampled = p.generate(PROMPT, method="speculative", draft="model", draft_max=4, max_tokens=N_TOKENS,
                             temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=3)
        assert max(sampled.tokens) < p.large.info["n_vocab"]


@pytest.mark.parametrize("method, params", [("fs", {}), ("fs", {"guard": False, "router": "always"}),
                                            ("oracle", {}), ("contrastive", {}), ("proxy", {})])
def test_combined_methods_write_shared_ids(pair, n_small, method, params):
    for sampling in ({}, dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=5)):
        r = pair.generate(PROMPT, method=method, max_tokens=N_TOKENS, **sampling, **params)
        assert len(r.tokens) == N_TOKENS and max(r.tokens) < n_small, r.tokens


# ---- sampled: speculative follows the large model's distribution over all of its ids ----

SAMPLING = dict(temperature=1.0, top_k=5, top_p=1.0, min_p=0.0)
SAMPLED_PROMPT = "hello world theN@"  # the large model's chain goes on to extra0 (mostly) here
N = 800
ALPHA = 1e-3


@pytest.fixture(scope="module")
def broad_large(tiny_factory):
    # Broader distributions: the extra ids compete with shared ones, and drafts are rejected.
    return tiny_factory("vocab_large_extra_broad", logit_scale=1.0, chain_strength=1.0, **LARGE_SHAPE)


def _samples(generate, seed0):
    return [tuple(generate(seed).tokens) for seed in range(seed0, seed0 + N)]


def test_sampled_speculative_matches_the_large_model(tiny_small, broad_large):
    with fsgen.Model(broad_large, **CTX) as large:
        n_small = large.info["n_vocab"] - 8
        expected = _samples(lambda s: large.generate(SAMPLED_PROMPT, max_tokens=3, seed=s, **SAMPLING), 10_000)
    with fsgen.Pair(tiny_small, broad_large, **CTX) as p:
        got = _samples(lambda s: p.generate(SAMPLED_PROMPT, method="speculative", draft="model", draft_max=2,
                                            max_tokens=3, seed=s, **SAMPLING), 0)
        stats = p.generate(SAMPLED_PROMPT, method="speculative", draft="model", draft_max=2, max_tokens=3, seed=1,
                           **SAMPLING).stats
    assert stats["drafted"] > 0
    extra = lambda samples: sum(t >= n_small for x in samples for t in x)
    assert extra(expected) > N // 2, "the bed: the large model samples its extra ids"
    for position in range(3):
        stat, df, p_value = chi2_two_sample(Counter(x[position] for x in got), Counter(x[position] for x in expected))
        assert p_value > ALPHA, f"position {position}: chi2={stat:.1f}, df={df}, p={p_value:.2g}"
