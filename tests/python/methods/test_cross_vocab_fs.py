"""fs (System 2 = the large model) and oracle across tokenizers (a translated pair): the output in
the large model's tokens, System 1 reading the text in its own.

The beds are test_cross_vocab's (tiny_small / tiny_incompatible differ in six merges, tiny_spm is
SentencePiece style), plus a model paired with a copy of itself under shuffled ids (the same
weights and text, another vocabulary order: tinymodels' permute_ids), where the answer is known.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import fsgen
from helpers import TINY, collect
from tinymodels import FIXTURE_MODELS, MIXED_LOGIT_SCALE

PROMPTS = ("The world", "é", "hello and the")


@pytest.fixture(scope="module")
def translated_pairs(tiny_small, tiny_incompatible, tiny_spm, tiny_large, tiny_mixed, tiny_factory):
    # The last: entropies on both sides of the default threshold, so fs both consults and not.
    mixed = tiny_factory("cross_fs_mixed_incompatible", vocab="incompatible", logit_scale=MIXED_LOGIT_SCALE, seed=2)
    pairs = [fsgen.Pair(small, large, **TINY) for small, large in
             ((tiny_small, tiny_incompatible), (tiny_spm, tiny_large), (tiny_small, tiny_spm), (tiny_mixed, mixed))]
    yield pairs
    for p in pairs:
        p.close()


@pytest.fixture(scope="module")
def copy_pair(tiny_factory, tiny_mixed):
    """tiny_mixed (entropies on both sides of the default threshold) and itself under other ids."""
    shuffled = tiny_factory("tiny_mixed_shuffled", permute_ids=5, **FIXTURE_MODELS["tiny_mixed"])
    with fsgen.Pair(tiny_mixed, shuffled, **TINY) as pair:
        yield pair


def test_system2_deciding_every_token_writes_the_large_models_text(translated_pairs):
    """Router "always" and oracle: System 2 writes every token after the text so far, with nothing
    pending, so nothing is backed off: large-only's tokens, whatever System 1's tokenizer."""
    multibyte = False
    for pair in translated_pairs:
        for prompt in PROMPTS:
            large = pair.generate(prompt, method="large", max_tokens=40)
            fs = pair.generate(prompt, method="fs", router="always", guard=False, max_tokens=40, trace=True)
            oracle = pair.generate(prompt, method="oracle", max_tokens=40, trace=True)
            # The guard hands the writing over to speculative decoding: still the large model's text.
            guarded = pair.generate(prompt, method="fs", router="always", max_tokens=40)
            assert (guarded.tokens, guarded.text) == (large.tokens, large.text), prompt
            for r in (fs, oracle):
                assert (r.tokens, r.text) == (large.tokens, large.text), prompt
                assert r.stats["system2_calls"] == len(r.tokens) and r.stats["vocab_translated"] == 1
                assert (r.trace.source == 1).all() and r.trace.system2_called.all()
            multibyte |= any(ord(c) > 127 for c in large.text)
    assert multibyte  # characters split across tokens were written


def test_system1_alone_writes_the_small_models_text(translated_pairs):
    """Router "never": System 1 writes as "small" does (it reads its own tokens); the output is
    that text in the large model's tokens, max_tokens counting those."""
    for pair in translated_pairs:
        for prompt in PROMPTS:
            small = pair.generate(prompt, method="small", max_tokens=120)
            for max_tokens in (1, 7, 40):
                r = pair.generate(prompt, method="fs", router="never", max_tokens=max_tokens, trace=True)
                assert small.text.startswith(r.text), (prompt, max_tokens)
                assert len(r.tokens) == max_tokens and r.finish_reason == "length"
                assert r.stats["system2_calls"] == 0 and (r.trace.source == 0).all()
                assert not any(math.isnan(e) for e in r.trace.entropy)
                assert pair.large.detokenize(r.tokens) == r.text or "\ufffd" in r.text


def test_a_model_with_its_shuffled_copy(copy_pair):
    """The same model under other ids: System 2 never disagrees (oracle: no mismatch), and fs
    writes System 1's text whoever decides (where System 1 stopped mid-word, System 2 reads the
    word as its own tokenizer splits it and rewrites the last token: token healing)."""
    assert copy_pair.vocab["kind"] == "translated" and copy_pair.vocab["shared_tokens"] == 299 - 2
    for prompt in PROMPTS:
        small = copy_pair.generate(prompt, method="small", max_tokens=60)
        oracle = copy_pair.generate(prompt, method="oracle", max_tokens=40, trace=True)
        assert oracle.stats["mismatches"] == 0 and small.text.startswith(oracle.text)
        assert not np.isnan(oracle.trace.entropy).all()
        consulted = 0
        for router in (dict(router="always"), dict(router="never"), dict(router="entropy", threshold=0),
                       dict(), dict(threshold=0.3, guard=False), dict(threshold=1.0, guard=False),
                       dict(router="budget", system2_share=0.3)):
            r = copy_pair.generate(prompt, method="fs", max_tokens=40, **router)
            assert small.text.startswith(r.text) and r.stats["mismatches"] == 0, router
            consulted += 0 < r.stats["system2_calls"] < len(r.tokens)
        assert consulted >= 2  # System 2 consulted on some tokens, not all


def test_routers_follow_system1s_uncertainty(copy_pair, translated_pairs):
    """Each System 2 token was chosen at a step whose entropy is above the threshold, each of
    System 1's below (but where it finished a character: System 1 is not interrupted there)."""
    for pair in (copy_pair, translated_pairs[1], translated_pairs[3]):
        for prompt in PROMPTS:
            for threshold in (0.3, 1.0):
                r = pair.generate(prompt, method="fs", threshold=threshold, guard=False, max_tokens=60, trace=True)
                t = r.trace
                assert r.stats["system2_calls"] == int(t.system2_called.sum())
                for token, called, entropy in zip(t.token, t.system2_called, t.entropy):
                    first_byte = pair.large.detokenize([int(token)]).encode("utf-8", "surrogateescape")[:1]
                    if called:
                        assert math.isnan(entropy) or entropy > threshold
                    elif first_byte and first_byte[0] < 0x80:
                        assert entropy <= threshold
            every = pair.generate(prompt, method="fs", threshold=0, guard=False, max_tokens=40, trace=True)
            assert every.stats["system2_calls"] == len(every.tokens) and every.trace.system2_called.all()
            # (The guard would hand over here: System 1 costs what System 2 does on the copy.)
            never = pair.generate(prompt, method="fs", threshold=1e9, guard=False, max_tokens=40)
            assert never.stats["system2_calls"] == 0
            assert never.text == pair.generate(prompt, method="fs", router="never", max_tokens=40).text
            budget = pair.generate(prompt, method="fs", router="budget", system2_share=0.3, max_tokens=80)
            assert 0 < budget.stats["system2_calls"] < 0.6 * len(budget.tokens)


FS = dict(method="fs", threshold=0.3, guard=False)  # fs itself writing (the guard hands over on tiny pairs)


def test_stop_strings_streaming_and_sources(copy_pair, translated_pairs):
    consulted = 0
    for pair in (copy_pair, *translated_pairs):
        whole = pair.generate("hello world", max_tokens=48, trace=True, **FS)
        consulted += whole.stats["system2_calls"]
        text, chunks = collect(pair.stream("hello world", max_tokens=48, **FS))
        assert text == whole.text
        assert {c.source for c in chunks} <= {fsgen.Source.SYSTEM1, fsgen.Source.SYSTEM2}
        if whole.stats["system2_calls"]:
            assert any(c.source == fsgen.Source.SYSTEM2 for c in chunks)
        # A stop string across several tokens, past text System 1 held back.
        stop = whole.text[10:16]
        r = pair.generate("hello world", max_tokens=48, stop=[stop], **FS)
        assert r.finish_reason == "stop" and r.text == whole.text[:whole.text.index(stop)]
    assert consulted > 10


def test_cancel_mid_generation_then_reuse(translated_pairs):
    for pair in translated_pairs:
        expected = pair.generate("the", max_tokens=40, **FS).tokens
        stream = pair.stream("hello", max_tokens=200, **FS)
        next(stream)
        stream.cancel()
        list(stream)
        assert stream.result.finish_reason == "cancelled" and len(stream.result.tokens) < 200
        assert pair.generate("the", max_tokens=40, **FS).tokens == expected


def test_guard_and_sampling_repeat(translated_pairs):
    """fs at its defaults (the guard on, handing over to speculative decoding across the
    tokenizers) and sampled fs give the same text twice."""
    for pair in translated_pairs:
        for params in (dict(), dict(router="always"), dict(temperature=0.8, seed=3, threshold=0.3),
                       dict(temperature=0.8, seed=4, threshold=0.3, guard=False)):
            a = pair.generate("hello world", method="fs", max_tokens=60, **params)
            b = pair.generate("hello world", method="fs", max_tokens=60, **params)
            assert (a.tokens, a.text) == (b.tokens, b.text), params
            assert len(a.tokens) <= 60


def test_end_of_generation(tiny_factory, tiny_small):
    """System 1 ending the text (after "hello" its model favours the end): the pending text is
    written out first ("hello" itself), then the large model's end of generation."""
    ending = tiny_factory("cross_fs_ending", vocab="incompatible", eos_after="hello", seed=2)
    with fsgen.Pair(ending, tiny_small, **TINY) as pair:
        small = pair.generate("The world", method="small", max_tokens=100)
        r = pair.generate("The world", method="fs", router="never", max_tokens=100)
        assert small.finish_reason == "eog" and small.text.endswith("hello")
        assert (r.text, r.finish_reason) == (small.text, small.finish_reason)
