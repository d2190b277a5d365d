"""Stochastic speculative decoding follows the large model's sampling distribution.

Both samplers are restricted to the same top_k = 5 (temperature 1, top_p 1, min_p 0), so each
position has at most 5 candidates. The drafter and the target share a vocabulary but not their
distributions: their top-5 sets overlap only partly, so drafts are accepted, rejected by the
ratio test, and rejected outright (a draft outside the target's top-5), and the residual
distribution is drawn from. Seeds are fixed, so the chi-square tests are deterministic (they
cannot flake); the significance level is 0.001.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import fsgen
from helpers import REPO, Reference, chi2_goodness, chi2_two_sample, import_llama_cpp

SAMPLING = dict(temperature=1.0, top_k=5, top_p=1.0, min_p=0.0)
PROMPT = "hello world"
N = 1500
ALPHA = 1e-3
CTX = dict(n_ctx=64, n_threads=1, n_batch=64)


@pytest.fixture(scope="module")
def sampling_models(tiny_factory):
    # Same seed, so related; the target's sharper logits and larger layer weights make its
    # distributions differ from the drafter's (top-5 sets overlap in 2 tokens after PROMPT).
    drafter = tiny_factory("sampling_drafter", logit_scale=2.0, seed=0)
    target = tiny_factory("sampling_target", logit_scale=3.0, seed=0, layer_scale=1.5)
    return drafter, target


@pytest.fixture(scope="module")
def pair(sampling_models):
    with fsgen.Pair(*sampling_models, **CTX) as p:
        yield p


def samples(pair, method, n_tokens=5, n=N, seed0=0, sampling=SAMPLING, prompt=PROMPT, **params):
    """Tuples of the first n_tokens tokens; -1 after an end-of-generation token (which only the
    untruncated samplers draw)."""
    out = []
    for seed in range(seed0, seed0 + n):
        r = pair.generate(prompt, method=method, max_tokens=n_tokens, seed=seed, **sampling, **params)
        assert len(r.tokens) == n_tokens or (sampling is not SAMPLING and r.finish_reason == "eog")
        out.append(tuple(r.tokens) + (-1,) * (n_tokens - len(r.tokens)))
    return out


@pytest.fixture(scope="module")
def large_samples(pair):
    return samples(pair, "large", seed0=10_000)


@pytest.fixture(scope="module")
def speculative_samples(pair):
    result = {}
    for draft_max in (1, 2, 4):
        result[draft_max] = samples(pair, "speculative", draft_max=draft_max)
    assert len(set(map(tuple, result.values()))) == 3, "each draft length samples differently"
    return result


def top_k_probabilities(logits, k=5):
    top = np.argsort(logits)[::-1][:k]
    p = np.exp(logits[top].astype(np.float64) - logits[top].max())
    return dict(zip(top.tolist(), (p / p.sum()).tolist()))


def exact_distributions(target, text):
    """The target's exact distributions (top-5, temperature 1) of the first token, of the first
    two tokens jointly, and of the third token's marginal, from its logits (the reference engine)."""
    import_llama_cpp()
    ref = Reference(target, **CTX)
    prompt = ref.tokenize(text)
    first = top_k_probabilities(ref.start(prompt))
    joint2, third = {}, Counter()
    for t1, p1 in first.items():
        ref.start(prompt)
        second = top_k_probabilities(ref.feed(t1))
        for t2, p2 in second.items():
            joint2[(t1, t2)] = p1 * p2
            ref.start(prompt)
            ref.feed(t1)
            for t3, p3 in top_k_probabilities(ref.feed(t2)).items():
                third[t3] += p1 * p2 * p3
    ref.close()
    return {"first": first, "joint2": joint2, "third": dict(third)}


@pytest.fixture(scope="module")
def exact(sampling_models):
    return exact_distributions(sampling_models[1], PROMPT)


def test_the_bed_exercises_rejection(pair, sampling_models):
    """Drafter and target disagree enough that drafts are both accepted and rejected."""
    r = [pair.generate(PROMPT, method="speculative", draft_max=2, max_tokens=12, seed=s, trace=True, **SAMPLING)
         for s in range(40)]
    drafted = sum(x.stats["drafted"] for x in r)
    accepted = sum(x.stats["accepted"] for x in r)
    assert 0.1 * drafted < accepted < 0.9 * drafted


def test_seeded_speculative_sampling_is_deterministic(pair):
    # Given the same drafts: a fixed source and length ("auto" picks the source by measured speed).
    a = pair.generate(PROMPT, method="speculative", draft="model", draft_max=3, max_tokens=16, seed=42, **SAMPLING)
    b = pair.generate(PROMPT, method="speculative", draft="model", draft_max=3, max_tokens=16, seed=42, **SAMPLING)
    assert a.tokens == b.tokens
    others = {tuple(pair.generate(PROMPT, method="speculative", draft="model", draft_max=3, max_tokens=16, seed=s,
                                  **SAMPLING).tokens) for s in range(5)}
    assert len(others) > 1


def _position(sample_list, index):
    return Counter(s[index] for s in sample_list)


@pytest.mark.parametrize("draft_max", [1, 2, 4])
@pytest.mark.parametrize("position", [0, 2, 4])
def test_speculative_matches_large_only_sampling(large_samples, speculative_samples, draft_max, position):
    """Two-sample chi-square: speculative vs large-only, at the first, third and fifth token."""
    stat, df, p = chi2_two_sample(_position(speculative_samples[draft_max], position),
                                  _position(large_samples, position))
    assert p > ALPHA, f"chi2={stat:.1f}, df={df}, p={p:.2g}"


@pytest.mark.parametrize("draft_max", [1, 2, 4])
def test_speculative_matches_exact_distribution(exact, speculative_samples, draft_max):
    """Goodness of fit to the target's exact distributions: first token, first two tokens jointly,
    third token's marginal."""
    s = speculative_samples[draft_max]
    for name, counts in (("first", _position(s, 0)), ("joint2", Counter(x[:2] for x in s)),
                         ("third", _position(s, 2))):
        stat, df, p = chi2_goodness(counts, exact[name])
        assert p > ALPHA, f"{name}: chi2={stat:.1f}, df={df}, p={p:.2g}"


def test_large_only_matches_exact_distribution(exact, large_samples):
    for name, counts in (("first", _position(large_samples, 0)), ("joint2", Counter(x[:2] for x in large_samples)),
                         ("third", _position(large_samples, 2))):
        stat, df, p = chi2_goodness(counts, exact[name])
        assert p > ALPHA, f"{name}: chi2={stat:.1f}, df={df}, p={p:.2g}"


@pytest.fixture(scope="module")
def small_samples(pair):
    return samples(pair, "small", n=600)


def test_the_two_sample_test_has_power(small_samples, large_samples):
    """The drafter's own samples are told apart from the target's: the tests above can fail.
    (Drawing a rejected draft's replacement from p_L instead of max(0, p_L - p_S) would shift the
    first token's distribution by a chi-square of about 200 at this sample size.)"""
    for position in (0, 2, 4):
        assert chi2_two_sample(_position(small_samples, position), _position(large_samples, position))[2] < 1e-6


def test_the_goodness_of_fit_test_has_power(exact, small_samples):
    with pytest.raises(AssertionError):  # tokens the target never proposes
        chi2_goodness(_position(small_samples, 0), exact["first"])
    # On the target's own support only, the drafter's distribution is still rejected.
    shared = {t: c for t, c in _position(small_samples, 0).items() if t in exact["first"]}
    assert chi2_goodness(shared, exact["first"])[2] < 1e-6


def test_proposals_stay_in_the_targets_top_k(exact, speculative_samples):
    """Every sampled token is one the target's own top-5 sampler could have drawn."""
    for sample_list in speculative_samples.values():
        assert set(_position(sample_list, 0)) <= set(exact["first"])
        assert {x[:2] for x in sample_list} <= set(exact["joint2"])


# ---- without truncation (top_k=0, top_p=1, min_p=0: what OpenAI-style clients send) ----

UNTRUNCATED = dict(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0)
N_UNTRUNCATED = 1000


@pytest.fixture(scope="module")
def untruncated(pair):
    """Samples of speculative (draft_max 2, System 1's drafts) and large-only over the whole
    vocabulary (end-of-generation tokens included)."""
    return {"large": samples(pair, "large", n=N_UNTRUNCATED, seed0=30_000, sampling=UNTRUNCATED),
            "speculative": samples(pair, "speculative", n=N_UNTRUNCATED, sampling=UNTRUNCATED, draft_max=2,
                                   draft="model")}


def test_untruncated_speculative_matches_the_target(untruncated):
    s = untruncated["speculative"]
    for position in (0, 2, 4):
        stat, df, p = chi2_two_sample(_position(s, position), _position(untruncated["large"], position))
        assert p > ALPHA, f"position {position}: chi2={stat:.1f}, df={df}, p={p:.2g}"


# ---- a vocabulary past the sampler's sorted-set size (1024 candidates) ----
# The sampler leaves large candidate sets unsorted (bucketed cuts and draws), and the residual of a
# rejection keeps the target's logits as its draw order: speculative must still sample the target.

N_BIG = 800


@pytest.fixture(scope="module")
def big_vocab_pair(tiny_factory):
    drafter = tiny_factory("sampling_drafter_big", logit_scale=2.0, seed=0, extra_tokens=1500)
    target = tiny_factory("sampling_target_big", logit_scale=3.0, seed=0, layer_scale=1.5, extra_tokens=1500)
    with fsgen.Pair(drafter, target, **CTX) as p:
        yield p


@pytest.mark.parametrize("top_p", [1.0, 0.9])
def test_big_vocabulary_speculative_matches_the_target(big_vocab_pair, top_p):
    sampling = dict(temperature=1.0, top_k=0, top_p=top_p, min_p=0.0)
    spec = samples(big_vocab_pair, "speculative", n=N_BIG, sampling=sampling, draft_max=2, draft="model")
    large = samples(big_vocab_pair, "large", n=N_BIG, seed0=40_000, sampling=sampling)
    small = samples(big_vocab_pair, "small", n=N_BIG, seed0=50_000, sampling=sampling)
    for position in (0, 2, 4):
        stat, df, p = chi2_two_sample(_position(spec, position), _position(large, position))
        assert p > ALPHA, f"position {position}: chi2={stat:.1f}, df={df}, p={p:.2g}"
    # The test has power: System 1's own samples are told apart.
    assert chi2_two_sample(_position(small, 0), _position(large, 0))[2] < 1e-6


# ---- n-gram drafts: a deterministic proposal under rejection sampling ----
# The target here is a broad one (tiny_flat: logit scale 0.5) whose next token depends mostly on
# the last one, so that a copied continuation is a plausible proposal: about 40% of n-gram drafts
# are accepted with these settings, the rest rejected (and the residual drawn).

@pytest.fixture(scope="module")
def ngram_pair(tiny_flat):
    with fsgen.Pair(tiny_flat, tiny_flat, **CTX) as p:
        yield p


@pytest.fixture(scope="module")
def ngram_prompt(ngram_pair):
    """The target's greedy text after "ok", then "ok" and its first two characters again: the
    n-gram lookup proposes what followed them the first time."""
    continuation = ngram_pair.generate("ok", method="large", max_tokens=10).text
    return f"ok{continuation} ok{continuation[:2]}"


@pytest.fixture(scope="module")
def ngram_samples(ngram_pair, ngram_prompt):
    return {"one model": samples(ngram_pair, "large", prompt=ngram_prompt, draft="ngram", draft_max=3),
            "speculative": samples(ngram_pair, "speculative", prompt=ngram_prompt, draft="ngram", draft_max=3)}


def test_the_ngram_bed_exercises_rejection(ngram_pair, ngram_prompt):
    for method in ("large", "speculative"):
        r = [ngram_pair.generate(ngram_prompt, method=method, draft="ngram", draft_max=3, max_tokens=5, seed=s,
                                 **SAMPLING) for s in range(60)]
        drafted = sum(x.stats["drafted_ngram"] for x in r)
        accepted = sum(x.stats["accepted_ngram"] for x in r)
        assert drafted == sum(x.stats["drafted"] for x in r)  # no other source
        assert 0.1 * drafted < accepted < 0.9 * drafted, (method, drafted, accepted)


@pytest.mark.parametrize("which", ["one model", "speculative"])
def test_ngram_drafts_match_exact_distribution(tiny_flat, ngram_prompt, ngram_samples, which):
    exact_ngram = exact_distributions(tiny_flat, ngram_prompt)
    s = ngram_samples[which]
    for name, counts in (("first", _position(s, 0)), ("joint2", Counter(x[:2] for x in s)),
                         ("third", _position(s, 2))):
        stat, df, p = chi2_goodness(counts, exact_ngram[name])
        assert p > ALPHA, f"{name}: chi2={stat:.1f}, df={df}, p={p:.2g}"


def test_ngram_drafts_keep_the_distribution_not_the_seeded_text(ngram_pair, ngram_prompt):
    """One model with n-gram drafts: greedy, the same text; sampled, the same distribution (the tests
    above) but another text for a given seed (a draft's acceptance takes a uniform draw where plain
    sampling draws the token), reproducible only given the same drafts. API.md says so."""
    def text(seed, **params):
        return ngram_pair.generate(ngram_prompt, method="large", max_tokens=5, seed=seed, **SAMPLING, **params).tokens
    assert ngram_pair.generate(ngram_prompt, method="large", max_tokens=12, draft="ngram", draft_max=3).tokens == \
        ngram_pair.generate(ngram_prompt, method="large", max_tokens=12).tokens
    assert any(text(s) != text(s, draft="ngram", draft_max=3) for s in range(10))
    assert all(text(s, draft="ngram", draft_max=3) == text(s, draft="ngram", draft_max=3) for s in range(5))
    api = " ".join((REPO / "docs" / "API.md").read_text(encoding="utf-8").split())
    assert "the same output, greedy or sampled" not in api
    assert "greedy, the same text; sampled, the same distribution" in api


def test_the_ngram_test_has_power(tiny_flat, ngram_prompt, ngram_samples):
    """Accepting every n-gram draft (as if greedy) would be told apart: all samples starting with
    the proposal do not fit the target's distribution."""
    exact_ngram = exact_distributions(tiny_flat, ngram_prompt)
    first = _position(ngram_samples["one model"], 0)
    proposal = max(first, key=first.get)
    assert exact_ngram["first"][proposal] < 0.9
    assert chi2_goodness(Counter({proposal: N}), exact_ngram["first"])[2] < 1e-6
