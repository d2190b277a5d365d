"""fsgen.Pair: vocabulary compatibility, loading each model once, Pairs of Model objects, the
shared chat template, streaming for every method."""
from __future__ import annotations

import pytest

import fsgen
import tinymodels
from helpers import METHODS, TINY, check_result, collect

DRAFT_NAMES = {0: None, 1: "model", 2: "ngram"}  # Chunk.draft by trace.draft_source


def test_different_vocabularies_pair_as_translated(tiny_small, tiny_incompatible):
    """Any two models pair; the methods that need one vocabulary name the first difference and the
    methods that work."""
    a = tinymodels.read_metadata(tiny_small)["tokenizer.ggml.tokens"]
    b = tinymodels.read_metadata(tiny_incompatible)["tokenizer.ggml.tokens"]
    assert len(a) == len(b)
    first = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    for small, large, (x, y) in ((tiny_small, tiny_incompatible, (a[first], b[first])),
                                 (tiny_incompatible, tiny_small, (b[first], a[first]))):
        with fsgen.Pair(small, large, **TINY) as pair:
            assert pair.vocab["kind"] == "translated"
            calls = [dict(method="contrastive"), dict(method="proxy")]
            calls += [dict(method=method, system2=system2) for method in ("fs", "oracle")
                      for system2 in ("contrastive", "proxy")]
            for call in calls:
                with pytest.raises(fsgen.IncompatibleVocabError) as info:
                    pair.generate("hello", max_tokens=4, **call)
                message = str(info.value)
                assert f"token {first}" in message, message
                assert x in message and y in message, message
                assert 'speculative, fs and oracle with system2="large", small and large' in message, message
                assert isinstance(info.value, fsgen.FsgenError)
            for method in ("speculative", "small", "large", "fs", "oracle"):
                assert pair.generate("hello", method=method, max_tokens=4).tokens


def test_vocab_of_shared_and_translated_pairs(tiny_small, tiny_large, tiny_incompatible, tiny_extra_vocab):
    with fsgen.Pair(tiny_small, tiny_large, **TINY) as pair:
        assert pair.vocab == {"kind": "shared", "overlap": 1.0, "shared_tokens": 299}
    with fsgen.Pair(tiny_small, tiny_extra_vocab, **TINY) as pair:
        assert pair.vocab["kind"] == "shared" and pair.vocab["shared_tokens"] == 299
    with fsgen.Pair(tiny_small, tiny_incompatible, **TINY) as pair:
        v = pair.vocab
        # Six merges differ (" i" vs " p", ...); of the control tokens only end-of-generation maps.
        assert v["kind"] == "translated" and v["shared_tokens"] == 299 - 6 - 2
        assert v["overlap"] == pytest.approx(v["shared_tokens"] / (2 * 299 - v["shared_tokens"]))


def test_pair_applies_each_models_chat_template(tiny_small, tiny_factory):
    custom = tiny_factory("pair_custom_template", chat_template=tinymodels.CUSTOM_TEMPLATE, seed=5)
    messages = [{"role": "user", "content": "hi"}]
    with fsgen.Pair(tiny_small, custom, **TINY) as pair:
        both = pair.apply_chat_template(messages)
        assert both == {"small": pair.small.apply_chat_template(messages),
                        "large": pair.large.apply_chat_template(messages)}
        assert both["small"] != both["large"]


def test_incompatible_small_base(tiny_small, tiny_large, tiny_incompatible):
    with pytest.raises(fsgen.IncompatibleVocabError):
        fsgen.Pair(tiny_small, tiny_large, small_base=tiny_incompatible, **TINY)


def test_extra_vocab_is_compatible(tiny_small, tiny_extra_vocab):
    n_small = len(tinymodels.read_metadata(tiny_small)["tokenizer.ggml.tokens"])
    for small, large in ((tiny_small, tiny_extra_vocab), (tiny_extra_vocab, tiny_small)):
        with fsgen.Pair(small, large, **TINY) as pair:
            assert abs(pair.small.info["n_vocab"] - pair.large.info["n_vocab"]) == 16
            for method in ("speculative", "fs", "oracle", "contrastive"):
                r = pair.generate("hello world", method=method, max_tokens=16, trace=True)
                check_result(r)
                # Speculative verification chooses among all of the large model's ids (test_vocab_sizes.py);
                # the combined methods only among the shared ones.
                limit = pair.large.info["n_vocab"] if method == "speculative" else n_small
                assert all(t < limit for t in r.tokens)


def test_same_path_is_loaded_once(tiny_small):
    with fsgen.Pair(tiny_small, tiny_small, **TINY) as pair:
        assert pair.small is pair.large
        assert pair.small_base is None
        r = pair.generate("hello", method="speculative", draft_max=3, max_tokens=16)
        assert len(r.tokens) == 16
    with fsgen.Pair(tiny_small, str(tiny_small), small_base=tiny_small, **TINY) as pair:
        assert pair.small is pair.large is pair.small_base


def test_pair_from_model_objects(tiny_small, tiny_large):
    with fsgen.Model(tiny_small, **TINY) as s, fsgen.Model(tiny_large, **TINY) as l:
        expected = l.generate("hello world", max_tokens=24)
        pair = fsgen.Pair(s, l, **TINY)
        assert pair.small is s and pair.large is l
        assert pair.generate("hello world", method="large", max_tokens=24).tokens == expected.tokens
        assert pair.generate("hello world", method="speculative", max_tokens=24).tokens == expected.tokens
        mixed = fsgen.Pair(s, tiny_large, **TINY)
        assert mixed.small is s and mixed.large is not l
        assert mixed.generate("hello world", method="large", max_tokens=24).tokens == expected.tokens
        mixed.close()
        pair.close()
        # Closing a Pair leaves the Models it was given open and usable.
        assert not s.closed and not l.closed
        assert l.generate("hello world", max_tokens=24).tokens == expected.tokens
        # The Models' own contexts were not disturbed by the Pair's.
        assert s.generate("hello world", max_tokens=8).tokens == s.generate("hello world", max_tokens=8).tokens


def test_small_and_large_methods_are_the_models_alone(tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, **TINY) as pair, \
            fsgen.Model(tiny_small, **TINY) as s, fsgen.Model(tiny_large, **TINY) as l:
        for prompt in ("hello world", "x", "Once upon a time"):
            small = pair.generate(prompt, method="small", max_tokens=32, trace=True)
            large = pair.generate(prompt, method="large", max_tokens=32, trace=True)
            assert small.tokens == s.generate(prompt, max_tokens=32).tokens
            assert large.tokens == l.generate(prompt, max_tokens=32).tokens
            assert small.tokens != large.tokens
            assert (small.trace.source == 0).all() and small.stats["system2_fraction"] == 0
            assert (large.trace.source == 1).all() and large.stats["system2_fraction"] == 1
            check_result(small, s)
            check_result(large, l)


def test_default_method_is_speculative(tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, **TINY) as pair:
        r = pair.generate("hello world", max_tokens=24, trace=True)
        assert r.tokens == pair.generate("hello world", method="large", max_tokens=24).tokens
        assert r.stats["system2_calls"] > 0


def test_pair_uses_the_large_models_chat_template(tiny_factory, tiny_small):
    no_template = tiny_factory("tiny_no_template", seed=0, chat_template=None)
    odd = "{{ messages[0]['content'] }}!"  # not one of llama.cpp's built-in templates: Jinja renders it
    odd_template = tiny_factory("tiny_odd_template", seed=0, chat_template=odd)
    messages = [{"role": "user", "content": "hi"}]
    with fsgen.Pair(no_template, tiny_small, **TINY) as pair:
        r = pair.generate(messages=messages, method="speculative", max_tokens=8)
        chatml = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        assert r.tokens == pair.generate(chatml, method="speculative", max_tokens=8).tokens
        assert r.stats["n_prompt_tokens"] == len(pair.large.tokenize(chatml))
        assert pair.generate(messages=messages, method="small", max_tokens=8).tokens == \
            pair.generate(chatml, method="small", max_tokens=8).tokens
    with fsgen.Pair(tiny_small, odd_template, **TINY) as pair:
        assert pair.generate(messages=messages, method="small", max_tokens=8).tokens == \
            pair.generate("hi!", method="small", max_tokens=8).tokens
    with fsgen.Pair(tiny_small, no_template, **TINY) as pair:
        with pytest.raises(fsgen.TemplateError):
            pair.generate(messages=messages, method="small", max_tokens=8)
        # Plain prompts still work.
        assert len(pair.generate("hi", method="speculative", max_tokens=4).tokens) == 4


def test_proxy_needs_small_base(tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, **TINY) as pair:
        with pytest.raises(fsgen.InvalidArgumentError, match="small_base"):
            pair.generate("hello", method="proxy", max_tokens=4)
        with pytest.raises(fsgen.InvalidArgumentError, match="small_base"):
            pair.generate("hello", method="fs", system2="proxy", max_tokens=4)


@pytest.mark.parametrize("method, params", [
    ("small", {}), ("large", {}), ("speculative", {"draft_max": 3, "draft": "model"}), ("speculative", {}),
    ("speculative", {"draft_max": 3, "draft": "ngram"}), ("large", {"draft": "ngram"}),
    ("contrastive", {}), ("contrastive", {"variant": "fsgen"}), ("proxy", {}),
    ("fs", {}), ("fs", {"guard": False}), ("fs", {"router": "budget"}),
    ("fs", {"router": "always", "system2": "contrastive"}), ("oracle", {}),
])
def test_pair_stream_equals_generate(tiny_small, tiny_large, tiny_mixed, small_base, method, params):
    # tiny_mixed as System 1: the entropy router consults System 2 at some steps only.
    with fsgen.Pair(tiny_mixed, tiny_large, small_base=small_base, **TINY) as pair:
        for prompt in ("hello world", "Once upon a time"):
            r = pair.generate(prompt, method=method, max_tokens=40, trace=True, **params)
            check_result(r)
            stream = pair.stream(prompt, method=method, max_tokens=40, trace=True, **params)
            assert stream.result is None
            text, chunks = collect(stream)
            assert stream.result is not None
            # Adaptive drafting, auto's choice of source, and fs's guard where it fires depend on timing.
            adaptive = (method == "speculative" and params.get("draft") not in ("model", "ngram")) or \
                (method == "fs" and params.get("guard", True) and params.get("system2", "large") == "large")
            # The guard hands over when fs is measured slower than large-only: what it writes then
            # (the large model's text) depends on when it fired.
            guarded = r.stats["guard_tokens"] > 0 or stream.result.stats["guard_tokens"] > 0
            if not guarded:
                assert text == r.text
                assert stream.result.tokens == r.tokens
            else:
                assert text == stream.result.text
            if not adaptive:
                assert stream.result.trace.source.tolist() == r.trace.source.tolist()
            # Each chunk names the system that wrote the token completing it.
            position = 0
            trace = stream.result.trace
            for chunk in chunks:
                while trace.token[position] != chunk.token:
                    position += 1
                assert chunk.source == trace.source[position], (chunk, position)
                assert chunk.draft == DRAFT_NAMES[trace.draft_source[position]], (chunk, position)
                position += 1


@pytest.mark.parametrize("method, params", [("large", {}), ("speculative", {"draft": "model", "draft_max": 4}),
                                            ("fs", {"router": "always", "guard": False}), ("contrastive", {})])
def test_text_held_back_to_the_end_keeps_its_source(tiny_small, tiny_large, method, params):
    """A piece released only at the end (held back as a stop string's possible start, or an unfinished
    character) names the token that ended it and who wrote it, with or without the trace."""
    with fsgen.Pair(tiny_small, tiny_large, **TINY) as pair:
        text = pair.generate("hello world", method=method, max_tokens=24, **params).text
        cases = [dict(max_tokens=24, stop=[text[-1] + "\u00a7"])]  # the last character waits for a "§"
        cases += [dict(max_tokens=n) for n in range(1, 24)]  # some end inside a character
        for case in cases:
            plain = list(pair.stream("hello world", method=method, **case, **params))
            with pair.stream("hello world", method=method, trace=True, **case, **params) as traced:
                assert list(traced) == plain, case
            trace = traced.result.trace
            assert plain[-1].token == trace.token[-1], case
            assert plain[-1].source == trace.source[-1] and plain[-1].draft == DRAFT_NAMES[trace.draft_source[-1]]
        if method in ("large", "fs"):
            assert plain[-1].source == fsgen.Source.SYSTEM2


def test_pair_sources_per_method(tiny_mixed, tiny_large, small_base):
    with fsgen.Pair(tiny_mixed, tiny_large, small_base=small_base, **TINY) as pair:
        def sources(method, **params):
            r = pair.generate("hello world", method=method, max_tokens=40, trace=True, **params)
            return set(r.trace.source.tolist())
        assert sources("small") == {0}
        assert sources("large") == {1}
        assert sources("speculative", draft_max=4) == {0, 1}
        assert sources("contrastive") == {2}
        assert sources("proxy") == {2}
        assert sources("fs", guard=False) == {0, 1}  # the guard's hand-overs follow measured speed
        assert sources("fs", system2="contrastive") == {0, 2}
        assert sources("oracle") == {1}


@pytest.mark.parametrize("method", METHODS)
def test_every_method_max_tokens_zero_and_one(tiny_small, tiny_large, small_base, method):
    with fsgen.Pair(tiny_small, tiny_large, small_base=small_base, **TINY) as pair:
        r = pair.generate("hello", method=method, max_tokens=0, trace=True)
        assert r.tokens == [] and r.text == "" and r.finish_reason == "length"
        check_result(r)
        r = pair.generate("hello", method=method, max_tokens=1, trace=True)
        assert len(r.tokens) == 1 and r.finish_reason == "length"
        check_result(r)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_respects_the_context(tiny_small, tiny_large, small_base, method):
    with fsgen.Pair(tiny_small, tiny_large, small_base=small_base, n_ctx=24, n_threads=1) as pair:
        r = pair.generate("hello world", method=method, max_tokens=100, trace=True)
        assert r.finish_reason == "length"
        assert 2 + len(r.tokens) <= 24
        check_result(r)


def test_pair_cancel(tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, n_ctx=4096, n_threads=1) as pair:
        stream = pair.stream("hello", method="fs", router="always", max_tokens=4000)
        next(stream)
        pair.cancel()
        list(stream)
        assert stream.result.finish_reason == "cancelled" and len(stream.result.tokens) < 4000
        r = pair.generate("hello", method="speculative", draft_max=2, max_tokens=8)
        assert r.finish_reason == "length" and len(r.tokens) == 8
