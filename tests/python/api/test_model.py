"""fsgen.Model on the tiny GGUF bed (and SmolLM2 where available): metadata, tokenization,
determinism, KV-cache reuse and rollback, stop strings, streaming, chat templates, finish reasons,
stats and trace invariants, quantized weights."""
from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

import fsgen
import tinymodels
from helpers import CHATML, PROMPTS, STATS_KEYS, TINY, check_result, check_trace, collect, require

MULTIBYTE_TEXTS = [
    "",
    "hello world",
    "caf\u00e9",
    "\u0436\u0436\u0436 \u0436",
    "\u20ac100 and \u20ac5",
    "\U0001F600\U0001F600 grin",
    "mixed: \u00e9\u0436\u20ac\U0001F600 \u65e5\u672c\u8a9e\n\ttabs\r\n and  spaces ",
    "<|im_start|>user\nhi \u00e9<|im_end|>\n",
]


@pytest.fixture()
def small(tiny_small):
    with fsgen.Model(tiny_small, **TINY) as model:
        yield model


# ---- load and metadata ----

def test_load_and_metadata(tiny_small):
    meta = tinymodels.read_metadata(tiny_small)
    with fsgen.Model(tiny_small, **TINY) as m:
        info = m.info
        assert info["architecture"] == "llama"
        assert info["n_params"] == tinymodels.parameter_count(tiny_small)
        assert info["n_vocab"] == len(meta["tokenizer.ggml.tokens"]) == 299
        assert info["chat_template"] == tinymodels.CHATML_TEMPLATE
        assert info["file_type"] == 0  # gguf.LlamaFileType.ALL_F32
        assert info["n_layer"] == 2 and info["n_embd"] == 64
        assert m.path.resolve() == tiny_small.resolve()
        assert str(tiny_small) in repr(m) or tiny_small.name in repr(m)
    assert m.closed


@pytest.mark.parametrize("fixture, file_type", [("tiny_q8", 7), ("tiny_q4", 2)])
def test_quantized_metadata(request, fixture, file_type):
    path = request.getfixturevalue(fixture)
    with fsgen.Model(path, **TINY) as m:
        assert m.info["file_type"] == file_type  # MOSTLY_Q8_0 = 7, MOSTLY_Q4_0 = 2
        assert m.info["n_params"] == tinymodels.parameter_count(path)


def test_closed_model_refuses_work(tiny_small):
    m = fsgen.Model(tiny_small, **TINY)
    m.close()
    m.close()  # idempotent
    with pytest.raises(fsgen.FsgenError):
        m.generate("hello", max_tokens=2)


# ---- tokenization ----

@pytest.mark.parametrize("text", MULTIBYTE_TEXTS)
def test_tokenize_detokenize_round_trip(small, text):
    tokens = small.tokenize(text)
    assert all(isinstance(t, int) and 0 <= t < small.info["n_vocab"] for t in tokens)
    assert small.detokenize(tokens) == text
    assert small.detokenize(small.tokenize(text, special=False)) == text


def test_tokenize_round_trip_property(small):
    hypothesis = require("hypothesis", "pip install 'fsgen[test]'")
    from hypothesis import strategies as st

    @hypothesis.settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @hypothesis.given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
    def round_trip(text):
        assert small.detokenize(small.tokenize(text, special=False)) == text
        assert small.detokenize(small.tokenize(text)) == text

    round_trip()


def test_tokenize_uses_the_vocabulary(small):
    tokens, _, _, bos, eos = tinymodels.build_vocab()
    assert small.tokenize("hello world") == [tokens.index("hello"), tokens.index("\u0120world")]
    # Byte-level BPE: a character without merges is its UTF-8 bytes, id == byte value.
    assert small.tokenize("\u00e9") == list("\u00e9".encode())
    assert small.tokenize("\U0001F600") == list("\U0001F600".encode())
    # Special tokens are parsed by default, spelled out byte by byte otherwise; no BOS is added.
    assert small.tokenize("<|im_start|>") == [tokens.index("<|im_start|>")]
    assert small.tokenize("<|im_end|>") == [eos]
    spelled = small.tokenize("<|im_start|>", special=False)
    assert len(spelled) > 1 and tokens.index("<|im_start|>") not in spelled
    assert small.tokenize("") == []


def test_detokenize_handles_utf8_split_across_tokens(small):
    euro = list("\u20ac".encode())  # three byte tokens
    assert small.detokenize(euro) == "\u20ac"
    # An unfinished character becomes replacement characters, never an exception or lost text.
    assert set(small.detokenize(euro[:2])) == {"\ufffd"}
    assert small.detokenize(euro[:1] + [ord("a")]) == "\ufffda"
    assert small.detokenize([0x80, ord("a")]) == "\ufffda"  # a stray continuation byte
    assert small.detokenize(euro + euro) == "\u20ac\u20ac"


# ---- determinism ----

@pytest.mark.parametrize("prompt", PROMPTS[:4])
def test_greedy_is_deterministic(tiny_small, small, prompt):
    first = small.generate(prompt, max_tokens=32)
    again = small.generate(prompt, max_tokens=32)
    with fsgen.Model(tiny_small, **TINY) as fresh:
        other = fresh.generate(prompt, max_tokens=32)
    assert first.tokens == again.tokens == other.tokens
    assert first.text == again.text == other.text
    assert len(first.tokens) == 32 and first.finish_reason == "length"
    assert first.text == small.detokenize(first.tokens)


def test_seeded_sampling_is_deterministic(tiny_flat):
    with fsgen.Model(tiny_flat, **TINY) as m:
        kwargs = dict(max_tokens=24, temperature=1.0)
        a = m.generate("hello", seed=7, **kwargs)
        b = m.generate("hello", seed=7, **kwargs)
        assert a.tokens == b.tokens and a.text == b.text
        outputs = {tuple(m.generate("hello", seed=seed, **kwargs).tokens) for seed in range(6)}
        assert len(outputs) == 6, "different seeds should give different samples on a flat model"
        greedy = m.generate("hello", max_tokens=24)
        assert tuple(greedy.tokens) not in outputs
        # The seed is honoured whatever ran before on the same context.
        m.generate("something else entirely", seed=3, **kwargs)
        assert m.generate("hello", seed=7, **kwargs).tokens == a.tokens
    with fsgen.Model(tiny_flat, **TINY) as fresh:
        assert fresh.generate("hello", seed=7, **kwargs).tokens == a.tokens


# ---- KV cache: prefix reuse and rollback ----

def test_kv_reuse_and_rollback_match_a_fresh_model(tiny_small, small):
    """One model's context serves a sequence of prompts that share prefixes with each other and
    with earlier outputs; every result equals a fresh model's."""
    a = "Once upon a time, in a land far away"
    first_a = small.generate(a, max_tokens=40)
    continued = a + first_a.text[:10]  # the cache holds these tokens already
    prompts = [a + " there", "Once upon", continued, a, "hello world", a, a + first_a.text]
    got = [small.generate(p, max_tokens=24) for p in prompts]
    shorter = small.generate(a, max_tokens=10)
    longer = small.generate(a, max_tokens=40)
    sampled = [small.generate(p, max_tokens=16, temperature=0.8, seed=11) for p in prompts[:3]]
    for p, r in zip(prompts, got):
        with fsgen.Model(tiny_small, **TINY) as fresh:
            assert r.tokens == fresh.generate(p, max_tokens=24).tokens, p
    for p, r in zip(prompts[:3], sampled):
        with fsgen.Model(tiny_small, **TINY) as fresh:
            assert r.tokens == fresh.generate(p, max_tokens=16, temperature=0.8, seed=11).tokens, p
    assert got[3].tokens == got[5].tokens == first_a.tokens[:24]
    assert shorter.tokens == first_a.tokens[:10]
    assert longer.tokens == first_a.tokens


LONG_A = ("Once upon a time, in a land far away, there lived a king who counted his coins every "
          "morning and every evening, and never once smiled at the sum, nor at the queen, nor at the sea.")
LONG_B = ("def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n"
          "print(add(2, 3), sub(5, 1))  # five and four, and nothing else")


@pytest.mark.parametrize("prompt_cache_mib", [256, 0])
def test_prompt_cache_restores_an_earlier_prompt(tiny_small, prompt_cache_mib):
    """A context that moved on to another prompt gets the earlier one back from the prompt cache
    (all but the last token, whose logits are read again) and writes what a fresh model writes."""
    with fsgen.Model(tiny_small, **TINY, prompt_cache_mib=prompt_cache_mib) as m:
        first = m.generate(LONG_A, max_tokens=16)
        assert first.stats["n_prompt_cached"] == 0
        assert first.stats["n_prompt_tokens"] > 100, "the prompt must outgrow a speculative rollback"
        m.generate(LONG_B, max_tokens=16)
        again = m.generate(LONG_A, max_tokens=16)
        sampled = m.generate(LONG_A, max_tokens=16, temperature=0.8, seed=3)
    expected = again.stats["n_prompt_tokens"] - 1 if prompt_cache_mib else 0
    assert again.stats["n_prompt_cached"] == expected
    assert again.tokens == first.tokens
    with fsgen.Model(tiny_small, **TINY) as fresh:
        assert sampled.tokens == fresh.generate(LONG_A, max_tokens=16, temperature=0.8, seed=3).tokens


def test_prompt_cache_serves_both_models_of_a_pair(tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, **TINY) as pair:
        first = pair.generate(LONG_A, method="speculative", draft_max=4, max_tokens=24)
        pair.generate(LONG_B, method="speculative", draft_max=4, max_tokens=24)
        again = pair.generate(LONG_A, method="speculative", draft_max=4, max_tokens=24)
        fs = pair.generate(LONG_B, method="fs", max_tokens=24)
    assert again.stats["n_prompt_cached"] == again.stats["n_prompt_tokens"] - 1
    assert fs.stats["n_prompt_cached"] == fs.stats["n_prompt_tokens"] - 1
    assert again.tokens == first.tokens
    with fsgen.Model(tiny_large, **TINY) as large:
        assert again.tokens == large.generate(LONG_A, max_tokens=24).tokens
        assert first.stats["drafted"] > 0


def test_bad_prompt_cache_size_is_refused(tiny_small):
    with pytest.raises(fsgen.InvalidArgumentError, match="prompt_cache_mib"):
        fsgen.Model(tiny_small, **TINY, prompt_cache_mib=-1)


def test_speculative_rollback_leaves_models_consistent(tiny_small, tiny_large):
    """Speculative decoding rolls both caches back after rejected drafts; the models generate
    as if fresh afterwards."""
    with fsgen.Pair(tiny_small, tiny_large, **TINY) as pair:
        spec = pair.generate("hello world", method="speculative", draft_max=5, max_tokens=48, trace=True)
        assert spec.stats["drafted"] > spec.stats["accepted"] > 0, "the test needs both accepted and rejected drafts"
        small_after = pair.generate("hello world", method="small", max_tokens=24)
        large_after = pair.generate("hello world", method="large", max_tokens=24)
    with fsgen.Model(tiny_small, **TINY) as s, fsgen.Model(tiny_large, **TINY) as l:
        assert small_after.tokens == s.generate("hello world", max_tokens=24).tokens
        assert large_after.tokens == l.generate("hello world", max_tokens=24).tokens
        assert spec.tokens == l.generate("hello world", max_tokens=48).tokens


# ---- stop strings ----

def _boundary_stop(model, tokens, text):
    """A stop string made of the end of one token's text and the start of the next one's, whose
    first occurrence in `text` is at that token boundary."""
    pieces = [model.detokenize([t]) for t in tokens]
    position = 0
    for i in range(len(pieces) - 1):
        position += len(pieces[i])
        left, right = pieces[i], pieces[i + 1]
        if i < 3 or not (left.isascii() and right.isascii()) or not left.strip() or not right.strip():
            continue
        stop = left[-2:] + right[:1]
        start = position - len(left[-2:])
        if text.find(stop) == start and text.startswith("".join(pieces[: i + 2])):
            return stop, start, i + 1
    raise AssertionError("no usable token boundary in the greedy output")


def test_stop_string_spanning_tokens(small):
    full = small.generate("hello world", max_tokens=60)
    stop, start, last_index = _boundary_stop(small, full.tokens, full.text)
    r = small.generate("hello world", max_tokens=60, stop=stop, trace=True)
    assert r.finish_reason == "stop"
    assert r.text == full.text[:start]
    assert stop not in r.text
    # Generation ends with the token that completes the stop string.
    assert r.tokens == full.tokens[: last_index + 1]
    check_result(r, small)
    # Streamed: the held-back start of the stop string is never sent.
    stream = small.stream("hello world", max_tokens=60, stop=[stop])
    text, _ = collect(stream)
    assert text == r.text and stream.result.finish_reason == "stop"


def test_stop_strings_earliest_wins_and_prompt_is_ignored(small):
    full = small.generate("hello world", max_tokens=60)
    stop, start, _ = _boundary_stop(small, full.tokens, full.text)
    later = full.text[start + 5: start + 9]
    assert later and full.text.find(later) > start
    r = small.generate("hello world", max_tokens=60, stop=[later, stop])
    assert r.finish_reason == "stop" and r.text == full.text[:start]
    # Stop strings are matched in the generated text only, not in the prompt.
    absent = "hello world"
    assert absent not in full.text
    r = small.generate("hello world", max_tokens=60, stop=absent)
    assert r.finish_reason == "length" and r.text == full.text


@pytest.mark.parametrize("char", tinymodels.MULTIBYTE_CHARS)
def test_stop_on_a_multibyte_character_split_across_tokens(tiny_small, char):
    with fsgen.Model(tiny_small, n_ctx=512, n_threads=1) as m:
        full = m.generate("hello", max_tokens=300)
        assert char in full.text, "the successor chain spells this character"
        r = m.generate("hello", max_tokens=300, stop=char)
        assert r.finish_reason == "stop"
        assert r.text == full.text[: full.text.index(char)]
        stream = m.stream("hello", max_tokens=300, stop=char)
        assert collect(stream)[0] == r.text


# ---- streaming ----

@pytest.mark.parametrize("prompt", ["hello", "caf\u00e9 \u0436", PROMPTS[5]])
def test_stream_text_equals_generate(small, prompt):
    r = small.generate(prompt, max_tokens=200, trace=True)
    stream = small.stream(prompt, max_tokens=200, trace=True)
    assert stream.result is None
    text, chunks = collect(stream)
    assert text == r.text
    assert stream.result is not None
    assert stream.result.text == r.text and stream.result.tokens == r.tokens
    assert stream.result.finish_reason == r.finish_reason
    assert all(c.source == 0 for c in chunks)
    assert [c.token for c in chunks if c.token in r.tokens] == [c.token for c in chunks]
    check_result(stream.result, small)
    # Iterating again yields nothing more.
    assert list(stream) == []


def test_sampled_stream_equals_generate(tiny_flat):
    with fsgen.Model(tiny_flat, **TINY) as m:
        r = m.generate("hello", max_tokens=64, temperature=0.9, seed=5)
        text, _ = collect(m.stream("hello", max_tokens=64, temperature=0.9, seed=5))
        assert text == r.text


def test_abandoned_stream_then_generate(tiny_small, small):
    with fsgen.Model(tiny_small, **TINY) as fresh:
        expected = fresh.generate("hello world", max_tokens=40)
    # Leave a for loop early, the stream still referenced.
    stream = small.stream("hello world", max_tokens=200)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    assert small.generate("hello world", max_tokens=40).tokens == expected.tokens
    # Dropped without being closed.
    stream = small.stream("hello world", max_tokens=200)
    next(stream)
    del stream
    gc.collect()
    assert small.generate("hello world", max_tokens=40).tokens == expected.tokens
    # Closed explicitly (also a context manager).
    with small.stream("Once upon a time", max_tokens=200) as stream:
        next(stream)
    assert stream.result is None or stream.result.finish_reason in ("cancelled", "length")
    again = small.stream("hello world", max_tokens=40)
    assert collect(again)[0] == expected.text


def test_breaking_out_of_a_stream_frees_its_work(tiny_small):
    with fsgen.Model(tiny_small, n_ctx=2048, n_threads=1) as m:
        stream = m.stream("hello", max_tokens=2000)
        for _ in stream:
            break
        assert len(m.generate("hello", max_tokens=2).tokens) == 2
        list(stream)
        assert stream.result.finish_reason == "cancelled"
        assert len(stream.result.tokens) < 2000


def test_stream_cancel(tiny_small):
    with fsgen.Model(tiny_small, n_ctx=4096, n_threads=1) as m:
        stream = m.stream("hello", max_tokens=4000)  # seconds of work if not cancelled
        first = next(stream)
        stream.cancel()
        rest = list(stream)
        assert stream.result.finish_reason == "cancelled"
        assert len(stream.result.tokens) < 4000
        assert first.text + "".join(c.text for c in rest) == stream.result.text
        # The model works normally afterwards.
        r = m.generate("hello", max_tokens=8)
        assert r.finish_reason == "length" and len(r.tokens) == 8


def test_model_cancel_from_another_thread(tiny_small):
    with fsgen.Model(tiny_small, n_ctx=4096, n_threads=1) as m:
        timer = threading.Timer(0.05, m.cancel)
        timer.start()
        try:
            r = m.generate("hello", max_tokens=4000)
        finally:
            timer.cancel()
        assert r.finish_reason == "cancelled" and len(r.tokens) < 4000
        assert m.generate("hello", max_tokens=4).finish_reason == "length"


# ---- chat template ----

def test_apply_chat_template_is_chatml(small):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi \u00e9"}]
    expected = "".join(CHATML.format(**m) for m in messages)
    assert small.apply_chat_template(messages) == expected + "<|im_start|>assistant\n"
    assert small.apply_chat_template(messages, add_assistant=False) == expected


def test_generate_with_messages(small):
    messages = [{"role": "user", "content": "Write a poem"}]
    prompt = small.apply_chat_template(messages)
    r = small.generate(messages=messages, max_tokens=24)
    assert r.tokens == small.generate(prompt, max_tokens=24).tokens
    assert r.stats["n_prompt_tokens"] == len(small.tokenize(prompt))
    assert len(r.tokens) == 24
    assert collect(small.stream(messages=messages, max_tokens=24))[0] == r.text


# ---- finish reasons, max_tokens, context ----

def test_max_tokens_zero(small):
    r = small.generate("hello world", max_tokens=0, trace=True)
    assert r.text == "" and r.tokens == [] and r.finish_reason == "length"
    assert r.stats["n_tokens"] == 0 and r.stats["n_prompt_tokens"] == len(small.tokenize("hello world"))
    check_result(r, small)
    stream = small.stream("hello world", max_tokens=0)
    assert list(stream) == [] and stream.result.tokens == []


@pytest.mark.parametrize("max_tokens", [1, 2, 7])
def test_max_tokens_is_exact(small, max_tokens):
    r = small.generate("hello world", max_tokens=max_tokens)
    assert len(r.tokens) == max_tokens and r.finish_reason == "length"


def test_end_of_generation(tiny_factory):
    # The output layer sends "e" to <|im_end|>: greedy decoding ends by itself there.
    path = tiny_factory("tiny_eos", eos_after="e", seed=0)
    eos = tinymodels.build_vocab()[4]
    with fsgen.Model(path, **TINY) as m:
        r = m.generate("hello", max_tokens=200, trace=True)
        assert r.finish_reason == "eog"
        assert 0 < len(r.tokens) < 200
        assert eos not in r.tokens  # the end-of-generation token is not part of the output
        assert r.tokens[-1] == ord("e") and r.text.endswith("e")
        check_result(r, m)
        stream = m.stream("hello", max_tokens=200)
        assert collect(stream)[0] == r.text and stream.result.finish_reason == "eog"
        # A prompt ending in the token "e": the very first token ends the generation.
        assert m.tokenize("one e")[-1] == ord("e")
        r = m.generate("one e", max_tokens=10)
        assert r.finish_reason == "eog" and r.tokens == [] and r.text == ""


def test_generation_stops_at_the_end_of_the_context(tiny_small):
    with fsgen.Model(tiny_small, n_ctx=32, n_threads=1) as m:
        n_prompt = len(m.tokenize("hello world"))
        r = m.generate("hello world", max_tokens=100)
        assert r.finish_reason == "length"
        assert n_prompt + len(r.tokens) <= 32
        assert len(r.tokens) >= 32 - n_prompt - 1
        with fsgen.Model(tiny_small, n_ctx=256, n_threads=1) as big:
            assert r.tokens == big.generate("hello world", max_tokens=len(r.tokens)).tokens


# ---- stats and trace ----

def test_stats_and_trace(small):
    r = small.generate("hello world", max_tokens=48, trace=True)
    assert set(r.stats) == STATS_KEYS
    check_result(r, small)
    s = r.stats
    assert s["n_tokens"] == 48 and s["n_prompt_tokens"] == 2
    assert s["system2_calls"] == s["drafted"] == s["accepted"] == s["mismatches"] == 0
    assert s["system2_fraction"] == s["acceptance_rate"] == s["mean_accepted_length"] == 0
    assert s["tokens_per_second"] > 0
    t = r.trace
    assert (t.source == 0).all() and not t.system2_called.any() and not t.mismatch.any()
    assert len(t.drafts) == 0
    assert np.isfinite(t.entropy).all() and (t.entropy >= 0).all()
    assert ((t.top1 > 0) & (t.top1 <= 1)).all() and ((t.margin >= 0) & (t.margin <= t.top1)).all()
    assert small.generate("hello world", max_tokens=4).trace is None


def test_text_offsets_with_multibyte_characters(tiny_small):
    with fsgen.Model(tiny_small, n_ctx=512, n_threads=1) as m:
        r = m.generate("hello", max_tokens=300, trace=True)
        assert any(ch in r.text for ch in tinymodels.MULTIBYTE_CHARS)
        check_trace(r, m)
        offsets = r.trace.text_offset
        # Tokens that complete a character start at its offset; the text between consecutive
        # offsets is what those tokens wrote.
        for i in range(len(r.tokens) - 1):
            piece = m.detokenize([r.tokens[i]])
            if piece.isascii() and piece:
                assert r.text[offsets[i]: offsets[i] + len(piece)] == piece


# ---- quantized weights (llama.cpp's AMX kernels only see these) ----

@pytest.mark.parametrize("fixture, same_prefix", [("tiny_q8", 16), ("tiny_q4", 4)])
def test_quantized_models_decode(request, tiny_small, fixture, same_prefix):
    path = request.getfixturevalue(fixture)
    with fsgen.Model(path, **TINY) as q, fsgen.Model(tiny_small, **TINY) as f32:
        r = q.generate("hello world", max_tokens=32, trace=True)
        assert len(r.tokens) == 32 and r.finish_reason == "length"
        check_result(r, q)
        assert np.isfinite(r.trace.entropy).all()
        # The same weights, rounded: greedy output starts like the f32 model's.
        assert r.tokens[:same_prefix] == f32.generate("hello world", max_tokens=32).tokens[:same_prefix]
        # Batched prompt processing too (a longer prompt).
        long = q.generate(" ".join(["the world"] * 30), max_tokens=8)
        assert len(long.tokens) == 8


def test_smollm2(smollm2):
    with fsgen.Model(smollm2, n_ctx=512, n_threads=1) as m:
        info = m.info
        assert info["architecture"] == "llama"
        assert info["n_vocab"] == 49152
        assert info["file_type"] == 3  # MOSTLY_Q4_1
        assert 100e6 < info["n_params"] < 200e6
        # A system message of our own: SmolLM2's template otherwise adds its default one ("You are
        # a helpful AI assistant named SmolLM..."), after which this Q4_1 135M model rambles.
        messages = [{"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": "What is the capital of France?"}]
        prompt = m.apply_chat_template(messages)
        assert prompt.startswith("<|im_start|>") and prompt.endswith("<|im_start|>assistant\n")
        r = m.generate(messages=messages, max_tokens=16, trace=True)
        assert 0 < len(r.tokens) <= 16 and r.text.strip()
        check_result(r, m)
        assert "Paris" in r.text
        text, _ = collect(m.stream(messages=messages, max_tokens=16))
        assert text == r.text
        for text in MULTIBYTE_TEXTS:
            assert m.detokenize(m.tokenize(text, special=False)) == text
