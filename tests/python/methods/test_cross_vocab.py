"""Speculative decoding across tokenizers (a translated pair), per draft algorithm (cross_vocab):
greedy output equals large-only, sampled output follows the large model's distribution, and
System 1's drafts still count as draft="model".

The beds: tiny_small and tiny_incompatible differ in six merges (" i" vs " p", ...) but share the
successor chain by id, so each mostly writes the other's text except around those tokens: drafts
are accepted, rejected, and cross token boundaries (" p" is one token of one and two of the other).
tiny_spm is SentencePiece style (a prefix space, byte fallback, <s>/</s> and no ChatML tokens)
with the same chain in text, paired both ways with the BPE models.
"""
from __future__ import annotations

import random
from collections import Counter

import pytest

import fsgen
from helpers import TINY, chi2_two_sample, collect

ALGORITHMS = ("slem", "tli", "auto")
PROMPTS = ("The world", "hello and the", "é€ of", "x", "  the  world ", "hello")


@pytest.fixture(scope="module")
def superset(tiny_factory):
    """tiny_small's vocabulary and 200 tokens more (too many for one vocabulary), which this model
    writes after "hello" and " world": text System 1 spells with several tokens of its own."""
    return tiny_factory("tiny_superset", extra_tokens=200, extra_after=("hello", "Ġworld"), seed=7)


@pytest.fixture(scope="module")
def translated_pairs(tiny_small, tiny_incompatible, tiny_spm, tiny_large, superset):
    pairs = [fsgen.Pair(small, large, **TINY) for small, large in
             ((tiny_small, tiny_incompatible), (tiny_incompatible, tiny_small), (tiny_spm, tiny_large),
              (tiny_small, tiny_spm), (tiny_small, superset))]
    yield pairs
    for p in pairs:
        p.close()


@pytest.mark.parametrize("cross_vocab", ALGORITHMS)
def test_greedy_equals_large_only(translated_pairs, cross_vocab):
    drafted = accepted = crossing = 0
    for pair in translated_pairs:
        for prompt in PROMPTS:
            large = pair.generate(prompt, method="large", max_tokens=48)
            for draft_max in (2, 6):
                r = pair.generate(prompt, method="speculative", draft="model", draft_max=draft_max,
                                  cross_vocab=cross_vocab, max_tokens=48, trace=True)
                assert r.tokens == large.tokens and r.text == large.text, (prompt, draft_max)
                assert r.stats["vocab_translated"] == 1
                drafted += r.stats["drafted"]
                accepted += r.stats["accepted"]
                for token, source, origin, entropy in zip(r.trace.token, r.trace.source, r.trace.draft_source,
                                                           r.trace.entropy):
                    if source == 0:  # accepted from System 1's draft: through the bridge, still "model"
                        assert origin == 1
                        if cross_vocab == "tli":  # System 1's own uncertainty (SLEM's tokens are not its own)
                            assert entropy >= 0
                        piece = pair.large.detokenize([int(token)])
                        crossing += len(pair.small.tokenize(piece, special=False)) > 1
    assert 0.3 * drafted < accepted < drafted  # drafts both accepted and rejected
    assert crossing > 0  # accepted large tokens that System 1 spells with several of its own


@pytest.mark.parametrize("cross_vocab", ALGORITHMS)
def test_auto_draft_and_streaming(translated_pairs, cross_vocab):
    pair = translated_pairs[0]
    large = pair.generate("hello world", method="large", max_tokens=32)
    r = pair.generate("hello world", method="speculative", cross_vocab=cross_vocab, max_tokens=32)
    assert r.tokens == large.tokens
    text, chunks = collect(pair.stream("hello world", method="speculative", draft="model", draft_max=4,
                                       cross_vocab=cross_vocab, max_tokens=32))
    assert text == large.text
    assert {c.draft for c in chunks} <= {None, "model"} and any(c.draft == "model" for c in chunks)


def _same_as_large(pair, prompt=None, **params):
    large = pair.generate(prompt, method="large", **params)
    for cross_vocab in ALGORITHMS:
        r = pair.generate(prompt, method="speculative", draft="model", draft_max=4, cross_vocab=cross_vocab,
                          **params)
        assert (r.tokens, r.text, r.finish_reason) == (large.tokens, large.text, large.finish_reason), cross_vocab
        assert r.stats["accepted"] > 0, cross_vocab
    return large


def test_partial_utf8_in_drafts(translated_pairs):
    """The chain spells é, ж, € and 😀 byte by byte: drafts end inside characters, and the large
    model's tokens split characters where System 1's do not (SentencePiece's byte fallback)."""
    for pair in translated_pairs:
        large = _same_as_large(pair, "é", max_tokens=120)
        assert any(ord(c) > 127 for c in large.text), large.text


def test_each_model_reads_its_own_chat_template(translated_pairs):
    """messages=: System 1 reads its own rendering (tiny_spm's template has no ChatML and writes
    <s>), the large model's decides the output; special tokens one vocabulary lacks are text to the other."""
    messages = [{"role": "user", "content": "hello world"}]
    for pair in translated_pairs[2:4]:
        both = pair.apply_chat_template(messages)
        assert both["small"] != both["large"]
        assert both["large"] == pair.large.apply_chat_template(messages)
        _same_as_large(pair, messages=messages, max_tokens=40)
        # The large model's special tokens written as a raw prompt: plain text to System 1.
        _same_as_large(pair, "<|im_start|>user\nhi<|im_end|>\n<s>", max_tokens=40)


def test_small_writes_after_its_own_prompt(translated_pairs, tiny_spm):
    pair = translated_pairs[2]  # tiny_spm before tiny_large
    messages = [{"role": "user", "content": "hello world"}]
    with fsgen.Model(tiny_spm, **TINY) as alone:
        for prompt in (dict(prompt="hello world"), dict(messages=messages)):
            r = pair.generate(method="small", max_tokens=24, **prompt)
            assert r.tokens == alone.generate(max_tokens=24, **prompt).tokens
            assert r.stats["vocab_translated"] == 1


def test_stop_strings_spanning_tokens(translated_pairs):
    for pair in translated_pairs:
        text = pair.generate("hello world", method="large", max_tokens=40).text
        # A stop string across several large tokens, past the first draft.
        stop = text[12:17]
        assert len(pair.large.tokenize(stop, special=False)) > 1 or len(pair.small.tokenize(stop, special=False)) > 1
        large = _same_as_large(pair, "hello world", max_tokens=40, stop=[stop])
        assert large.finish_reason == "stop" and large.text == text[:text.index(stop)]


def test_cancel_while_drafting_then_reuse(translated_pairs):
    for pair in translated_pairs[2:]:
        expected = pair.generate("the", method="large", max_tokens=40).tokens
        stream = pair.stream("hello", method="speculative", draft="model", draft_max=8, max_tokens=200)
        next(stream)
        stream.cancel()
        list(stream)
        assert stream.result.finish_reason == "cancelled" and len(stream.result.tokens) < 200
        for cross_vocab in ALGORITHMS:
            r = pair.generate("the", method="speculative", draft="model", draft_max=4, cross_vocab=cross_vocab,
                              max_tokens=40)
            assert r.tokens == expected


def test_a_vocabulary_within_another(translated_pairs):
    pair = translated_pairs[4]
    assert pair.vocab["kind"] == "translated" and pair.vocab["shared_tokens"] == 299 - 2
    large = _same_as_large(pair, "hello", max_tokens=40)
    assert "extra0" in large.text


def test_auto_follows_the_better_algorithm(translated_pairs):
    """BPE System 1 before a SentencePiece large model: TLI's shared tokens miss the large model's
    word-start pieces ("▁" alone), SLEM re-tokenizes whole words; auto settles on SLEM."""
    pair = translated_pairs[3]
    rate = {}
    for cross_vocab in ALGORITHMS:
        drafted = accepted = 0
        for prompt in PROMPTS:
            r = pair.generate(prompt, method="speculative", draft="model", draft_max=4, max_tokens=100,
                              cross_vocab=cross_vocab)
            drafted, accepted = drafted + r.stats["drafted"], accepted + r.stats["accepted"]
        rate[cross_vocab] = accepted / drafted
    assert rate["tli"] < 0.6 * rate["slem"], rate
    assert rate["auto"] > 0.85 * rate["slem"], rate


def test_cross_vocab_is_ignored_on_a_shared_pair(tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, **TINY) as pair:
        runs = [pair.generate("hello world", method="speculative", draft="model", draft_max=4, max_tokens=32,
                              cross_vocab=cv) for cv in ("auto", "slem", "tli")]
        assert runs[0].tokens == runs[1].tokens == runs[2].tokens
        assert runs[0].stats["vocab_translated"] == 0


# ---- sampling: the large model's distribution, whatever System 1 proposes ----

SAMPLING = dict(temperature=1.0, top_k=5, top_p=1.0, min_p=0.0)
N = 1000
ALPHA = 1e-3


@pytest.fixture(scope="module", params=["incompatible", "spm"])
def sampling_pair(tiny_factory, request):
    # As test_sampling_distribution's bed, System 1 with the other merges, or SentencePiece style.
    drafter = tiny_factory(f"cross_sampling_drafter_{request.param}", vocab=request.param, logit_scale=2.0, seed=0)
    target = tiny_factory("sampling_target", logit_scale=3.0, seed=0, layer_scale=1.5)
    with fsgen.Pair(drafter, target, n_ctx=64, n_threads=1, n_batch=64) as pair:
        yield pair


def _samples(pair, method, seed0, n=N, **params):
    out = []
    for seed in range(seed0, seed0 + n):
        r = pair.generate("hello world", method=method, max_tokens=4, seed=seed, **SAMPLING, **params)
        out.append(tuple(r.tokens) + (-1,) * (4 - len(r.tokens)))
    return out


@pytest.fixture(scope="module")
def large_samples(sampling_pair):
    return _samples(sampling_pair, "large", 10_000)


@pytest.mark.parametrize("cross_vocab", ALGORITHMS)
def test_sampling_matches_large_only(sampling_pair, large_samples, cross_vocab):
    stats = Counter()
    for seed in range(40):
        r = sampling_pair.generate("hello world", method="speculative", draft="model", draft_max=3, max_tokens=12,
                                   seed=seed, cross_vocab=cross_vocab, **SAMPLING)
        stats.update(drafted=r.stats["drafted"], accepted=r.stats["accepted"])
    assert 0.05 * stats["drafted"] < stats["accepted"] < 0.95 * stats["drafted"], stats
    spec = _samples(sampling_pair, "speculative", 0, draft="model", draft_max=3, cross_vocab=cross_vocab)
    for position in (0, 1, 3):
        stat, df, p = chi2_two_sample(Counter(s[position] for s in spec), Counter(s[position] for s in large_samples))
        assert p > ALPHA, f"position {position}: chi2={stat:.1f}, df={df}, p={p:.2g}"
    joint = chi2_two_sample(Counter(s[:2] for s in spec), Counter(s[:2] for s in large_samples))
    assert joint[2] > ALPHA, joint


def test_the_sampling_test_has_power(sampling_pair, large_samples):
    small = _samples(sampling_pair, "small", 20_000, n=400)
    # System 1's ids are not the large model's: compare the text of the first token's bytes.
    first = Counter(sampling_pair.small.detokenize([s[0]]) for s in small)
    target = Counter(sampling_pair.large.detokenize([s[0]]) for s in large_samples)
    assert chi2_two_sample(first, target)[2] < 1e-6


def test_random_prompts_stops_and_lengths(translated_pairs):
    """Seeded random prompts (specials of either vocabulary, partial words, emoji), lengths, draft
    lengths and stop strings: greedy speculative writes what large-only writes."""
    rng = random.Random(3)
    alphabet = list("abcdefghij klmnop  \n\t.,!?éж€😀<>|_") + ["<|im_start|>", "<s>", "</s>", " the", "hello"]
    for pair in translated_pairs:
        for _ in range(8):
            prompt = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
            max_tokens = rng.randint(1, 48)
            text = pair.generate(prompt, method="large", max_tokens=max_tokens).text
            stop = [text[3:6]] if len(text) > 6 and rng.random() < 0.5 else None
            large = pair.generate(prompt, method="large", max_tokens=max_tokens, stop=stop)
            for cross_vocab in ALGORITHMS:
                r = pair.generate(prompt, method="speculative", max_tokens=max_tokens, stop=stop,
                                  cross_vocab=cross_vocab, draft=rng.choice(["model", "auto"]),
                                  draft_max=rng.choice([None, 1, 3, 9]))
                assert (r.tokens, r.text) == (large.tokens, large.text), (prompt, cross_vocab, stop)
