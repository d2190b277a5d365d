"""Context exhaustion in every method.

A prompt that does not fit raises ContextOverflowError before any decoding; a generation that
reaches the end of the context stops with finish_reason "length" when the sequence holds exactly
n_ctx tokens, in every method (speculative decoding included, whose drafts must stop at the
edge), and the pair stays usable. (test_typed_errors.py covers the plain prompt-too-long case.)
"""
from __future__ import annotations

import pytest

import fsgen

from helpers import METHODS  # noqa: E402  (every method of the core's table)
# Method parameters that change where the context edge falls inside a step.
VARIANTS = [
    ("small", {}), ("large", {}), ("speculative", {}), ("speculative", {"draft_max": 16}),
    ("speculative", {"draft_max": 7}), ("speculative", {"draft_max": 1}), ("contrastive", {}),
    # fs without its guard: the guard's hand-overs follow measured speed, not the text.
    ("proxy", {}), ("fs", {"guard": False}), ("fs", {"router": "always", "guard": False}),
    ("fs", {"system2": "contrastive", "router": "always"}),
    ("oracle", {}), ("oracle", {"system2": "proxy"}),
]


def variant_id(v):
    method, params = v
    return method + "".join(f"-{k}={val}" for k, val in params.items())


def make_pair(tiny_small, tiny_large, n_ctx):
    return fsgen.Pair(tiny_small, tiny_large, small_base=tiny_small, n_ctx=n_ctx, n_threads=1)


@pytest.fixture(scope="module")
def reference(tiny_small, tiny_large):
    """Outputs with plenty of room: what a run stopped by the context must be a prefix of."""
    with make_pair(tiny_small, tiny_large, 512) as pair:
        yield {variant_id(v): pair.generate("hello world", method=v[0], max_tokens=300, **v[1]).tokens
               for v in VARIANTS}


@pytest.mark.parametrize("n_ctx", [64, 100, 129])
@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_generation_stops_at_the_end_of_the_context(tiny_small, tiny_large, reference, variant, n_ctx):
    method, params = variant
    with make_pair(tiny_small, tiny_large, n_ctx) as pair:
        result = pair.generate("hello world", method=method, max_tokens=10_000, trace=True, **params)
        assert result.finish_reason == "length"
        assert result.stats["n_prompt_tokens"] + len(result.tokens) == n_ctx
        assert len(result.trace) == len(result.tokens)
        # Greedy: the same tokens as with room to spare, cut at the edge.
        assert result.tokens == reference[variant_id(variant)][:len(result.tokens)]
        # Usable afterwards, and the next call reaches the edge the same way.
        again = pair.generate("hello world", method=method, max_tokens=10_000, **params)
        assert again.tokens == result.tokens
        assert pair.generate("the", method=method, max_tokens=5, **params).finish_reason == "length"


@pytest.mark.parametrize("method", METHODS)
def test_max_tokens_beyond_the_room_left(tiny_small, tiny_large, method):
    """max_tokens equal to, one more than, and one less than the room the context leaves."""
    with make_pair(tiny_small, tiny_large, 64) as pair:
        n_prompt = len(pair.large.tokenize("hello world"))
        room = 64 - n_prompt
        for max_tokens, expected in ((room - 1, room - 1), (room, room), (room + 1, room)):
            result = pair.generate("hello world", method=method, max_tokens=max_tokens)
            assert result.finish_reason == "length"
            assert len(result.tokens) == expected, (max_tokens, len(result.tokens))


@pytest.mark.parametrize("method", METHODS)
def test_prompt_one_token_short_of_the_context(tiny_small, tiny_large, method):
    with make_pair(tiny_small, tiny_large, 64) as pair:
        prompt = "x" * 63
        assert len(pair.large.tokenize(prompt)) == 63
        result = pair.generate(prompt, method=method, max_tokens=100)
        assert result.finish_reason == "length" and len(result.tokens) == 1


@pytest.mark.parametrize("method", METHODS)
def test_prompt_that_fills_the_context_is_refused_before_decoding(tiny_small, tiny_large, method):
    with make_pair(tiny_small, tiny_large, 64) as pair:
        expected = pair.generate("the", method=method, max_tokens=10).tokens
        for n in (64, 65, 500):
            with pytest.raises(fsgen.ContextOverflowError, match=f"{n} tokens"):
                pair.generate("x" * n, method=method, max_tokens=4)
            with pytest.raises(fsgen.ContextOverflowError):
                list(pair.stream("x" * n, method=method, max_tokens=4))
        # Nothing was decoded: the caches still hold the previous call's tokens and the next
        # call gives the same output.
        assert pair.generate("the", method=method, max_tokens=10).tokens == expected


def test_chat_prompt_overflow(tiny_small, tiny_large):
    with make_pair(tiny_small, tiny_large, 64) as pair:
        messages = [{"role": "user", "content": "y" * 60}]
        with pytest.raises(fsgen.ContextOverflowError):
            pair.generate(messages=messages, max_tokens=4)
        short = [{"role": "user", "content": "hi"}]
        result = pair.generate(messages=short, max_tokens=1000)
        assert result.finish_reason in ("length", "eog")
        assert result.stats["n_prompt_tokens"] + len(result.tokens) <= 64


def test_model_alone_reaches_the_end_of_the_context(tiny_small):
    with fsgen.Model(tiny_small, n_ctx=80, n_threads=1) as model:
        result = model.generate("hello world", max_tokens=1000)
        assert result.finish_reason == "length"
        assert result.stats["n_prompt_tokens"] + len(result.tokens) == 80
        streamed = model.stream("hello world", max_tokens=1000)
        assert "".join(c.text for c in streamed) == result.text
        assert streamed.result.finish_reason == "length"
        with pytest.raises(fsgen.ContextOverflowError):
            model.generate("x" * 80, max_tokens=1)
        assert model.generate("hello world", max_tokens=1000).tokens == result.tokens


def test_stream_reaches_the_end_of_the_context(tiny_small, tiny_large):
    with make_pair(tiny_small, tiny_large, 96) as pair:
        for method in ("speculative", "fs", "oracle"):
            stream = pair.stream("hello world", method=method, max_tokens=1000)
            text = "".join(c.text for c in stream)
            assert stream.result.finish_reason == "length"
            assert text == stream.result.text
            assert stream.result.stats["n_prompt_tokens"] + len(stream.result.tokens) == 96


def test_context_smaller_than_the_padded_one(tiny_small, tiny_large):
    """llama.cpp rounds a context up (to 256 cells): fsgen still honours the n_ctx asked for,
    in the pair and in each model alone."""
    with make_pair(tiny_small, tiny_large, 40) as pair:
        assert len(pair.generate("hello", method="speculative", max_tokens=1000).tokens) + \
            len(pair.large.tokenize("hello")) == 40
        assert len(pair.small.generate("hello", max_tokens=1000).tokens) + len(pair.small.tokenize("hello")) == 40
