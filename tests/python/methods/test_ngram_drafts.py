"""Free drafts: n-gram lookup in the prompt and the output so far, verified by one model or by
System 2; draft="auto" takes each round the better of the n-gram draft and System 1's; drafts are
capped by the verify batch (adaptive mode included); the verify-cost calibration and its cache."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

import fsgen
from helpers import PROMPTS, check_result

CTX = dict(n_ctx=256, n_threads=1, n_batch=256)
# Text that repeats itself (as code edits repeat their input): n-gram drafts find matches.
REPEATING = ["def f(x):\n    return x + 1\n\ndef f(x):\n    return x",
             "hello world hello world hello world hello",
             "the of and the of and the of"]


@pytest.fixture(scope="module")
def model(tiny_large):
    with fsgen.Model(tiny_large, **CTX) as m:
        yield m


@pytest.fixture(scope="module")
def pair(tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, **CTX) as p:
        yield p


@pytest.mark.parametrize("draft_max", [None, 4])
def test_one_model_ngram_drafts_keep_the_greedy_output(model, draft_max):
    drafted = accepted = 0
    for prompt in PROMPTS + REPEATING:
        plain = model.generate(prompt, max_tokens=40)
        r = model.generate(prompt, max_tokens=40, draft="ngram", draft_max=draft_max, trace=True)
        assert r.tokens == plain.tokens and r.text == plain.text, prompt
        check_result(r)
        t = r.trace
        assert set(np.unique(t.draft_source).tolist()) <= {0, 2}
        assert (t.drafts.source == 2).all()
        assert r.stats["drafted"] == r.stats["drafted_ngram"] and r.stats["accepted"] == r.stats["accepted_ngram"]
        assert not t.system2_called.any() and (t.source == 0).all(), "one model writes every token"
        drafted += r.stats["drafted_ngram"]
        accepted += r.stats["accepted_ngram"]
    if draft_max is not None:  # fixed length: every match is drafted
        assert 0 < accepted < drafted


def test_one_model_stream_with_ngram_drafts(model):
    prompt = REPEATING[0]
    plain = model.generate(prompt, max_tokens=32)
    with model.stream(prompt, max_tokens=32, draft="ngram", draft_max=4) as s:
        text = "".join(c.text for c in s)
    assert text == plain.text and s.result.tokens == plain.tokens
    assert s.result.stats["drafted_ngram"] > 0


def test_chunks_name_the_draft_they_come_from(pair):
    """Chunk.draft: "ngram" for an accepted n-gram draft (written by System 2, which verified it),
    "model" for System 1's (written by System 1), None otherwise: the token's trace.draft_source."""
    start = "hello world"
    prompt = start + pair.generate(start, method="large", max_tokens=24).text + start  # the continuation repeats
    names = {None: fsgen.DraftSource.NONE, "model": fsgen.DraftSource.MODEL, "ngram": fsgen.DraftSource.NGRAM}
    for draft, writer in (("ngram", fsgen.Source.SYSTEM2), ("model", fsgen.Source.SYSTEM1)):
        with pair.stream(prompt, method="speculative", draft=draft, draft_max=4, max_tokens=24, trace=True) as s:
            chunks = list(s)
        drafts = {c.draft for c in chunks}
        assert draft in drafts and drafts <= {None, draft}, chunks
        assert all(c.source == writer for c in chunks if c.draft is not None)
        rows = iter(zip(s.result.trace.token.tolist(), s.result.trace.draft_source.tolist()))
        for c in chunks:  # each chunk's token, in order, with its draft origin
            assert any(token == c.token and origin == names[c.draft] for token, origin in rows), c
        # Without the trace, the same chunks.
        assert list(pair.stream(prompt, method="speculative", draft=draft, draft_max=4, max_tokens=24)) == chunks


def test_chunk_draft_defaults_to_none():
    chunk = fsgen.Chunk("a", fsgen.Source.SYSTEM1, 5)
    assert chunk._fields == ("text", "source", "token", "draft") and chunk.draft is None
    assert chunk == ("a", fsgen.Source.SYSTEM1, 5, None)


def test_default_one_model_does_not_draft(model):
    r = model.generate(REPEATING[1], max_tokens=24, trace=True)
    assert r.stats["drafted"] == 0 and (r.trace.draft_source == 0).all()


def test_draft_names_are_checked(model, pair):
    with pytest.raises(fsgen.InvalidArgumentError, match="draft"):
        model.generate("hi", max_tokens=2, draft="model")  # one model has no System 1
    with pytest.raises(fsgen.InvalidArgumentError, match="draft"):
        model.generate("hi", max_tokens=2, draft="lookahead")
    with pytest.raises(fsgen.InvalidArgumentError, match="draft"):
        pair.generate("hi", method="large", max_tokens=2, draft="model")


@pytest.mark.parametrize("method", ["small", "large"])
def test_pair_single_methods_with_ngram_drafts(pair, method):
    for prompt in REPEATING:
        plain = pair.generate(prompt, method=method, max_tokens=32)
        r = pair.generate(prompt, method=method, draft="ngram", draft_max=3, max_tokens=32, trace=True)
        assert r.tokens == plain.tokens
        assert r.stats["drafted_ngram"] > 0 and set(np.unique(r.trace.draft_source).tolist()) <= {0, 2}
        assert set(np.unique(r.trace.source).tolist()) == {0 if method == "small" else 1}


def copying_prompt(pair):
    """A prompt that ends by starting to repeat the large model's own text: the n-gram lookup finds
    a long match whose continuation the large model accepts."""
    text = pair.generate("hello world", method="large", max_tokens=24).text
    return f"hello world{text}\nhello world{text[:4]}"


@pytest.mark.parametrize("draft", [None, "auto"])  # None: the default, which is "auto"
def test_auto_uses_both_sources(tiny_small, tiny_large, draft):
    """Where the text repeats, n-gram drafts (free) are taken; where nothing matches, System 1's.
    A fresh pair: the choice rests on the planner's priors, not on earlier calls."""
    with fsgen.Pair(tiny_small, tiny_large, **CTX) as p:
        prompts = [copying_prompt(p), "x"]
        options = {} if draft is None else {"draft": draft}
        for prompt, source in zip(prompts, (2, 1)):
            expected = p.generate(prompt, method="large", max_tokens=24).tokens
            r = p.generate(prompt, method="speculative", draft_max=4, max_tokens=24, trace=True, **options)
            assert r.tokens == expected
            assert r.trace.drafts.source[0] == source, (prompt, r.trace.drafts.source)
            # Accepted n-gram drafts are System 2's choice; System 1's are its own tokens.
            assert (r.trace.source[r.trace.draft_source == 2] == 1).all()
            assert (r.trace.source[r.trace.draft_source == 1] == 0).all()
        assert r.stats["drafted"] > r.stats["drafted_ngram"]


# ---- the verify batch caps adaptive drafts too ----

def flat_curve(rows=64, seconds=1e-3):
    return [-1.0] + [seconds] * rows


def test_adaptive_draft_longer_than_the_batch(tiny_small):
    """A calibration that makes long drafts look free: the adaptive planner wants 16-token drafts;
    with n_batch=8 each draft stops at 7."""
    with fsgen.Pair(tiny_small, tiny_small, n_ctx=256, n_threads=1, n_batch=8) as p:
        expected = p.generate("hello world", method="large", max_tokens=60)
        p._core.set_calibration(flat_curve(), 1e-6)
        q = p._core.planner()
        assert q.best_length(1, 16, q.acceptance(1)) > 7
        r = p.generate("hello world", method="speculative", draft="model", max_tokens=60, trace=True)
        assert r.tokens == expected.tokens
        lengths = r.trace.drafts.length
        assert lengths.max() == 7, lengths  # wanted more, capped at n_batch - 1


# ---- calibration ----

def test_calibration_is_cached_and_reused(tiny_small, tiny_large, tmp_path, monkeypatch):
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path))
    with fsgen.Pair(tiny_small, tiny_large, calibrate=True, **CTX) as p:
        assert p.planner["calibration"] == {}
        p.generate("hello", max_tokens=4)
        figures = p.planner
    curve = figures["calibration"]["verify_seconds"]
    assert set(curve) >= {1, 2, 4, 8, 16} and all(s > 0 for s in curve.values())
    assert figures["calibration"]["draft_seconds"] > 0
    files = list((tmp_path / "calibration").glob("*.json"))
    assert len(files) == 1
    stored = json.loads(files[0].read_text())
    with fsgen.Pair(tiny_small, tiny_large, calibrate=True, **CTX) as p:
        p.generate("hello", max_tokens=4)  # from the cache, not measured again
        again = p.planner["calibration"]
    assert again["verify_seconds"] == {r: s for r, s in enumerate(stored["verify"]) if r and s > 0}
    assert again == figures["calibration"]


def test_calibration_off(tiny_small, tiny_large, tmp_path, monkeypatch):
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path))
    monkeypatch.setenv("FSGEN_CALIBRATE", "0")
    with fsgen.Pair(tiny_small, tiny_large, **CTX) as p:
        p.generate("hello", max_tokens=4)
        assert p.planner["calibration"] == {}
    assert not (tmp_path / "calibration").exists()
    monkeypatch.setenv("FSGEN_CALIBRATE", "1")
    with fsgen.Pair(tiny_small, tiny_large, calibrate=False, **CTX) as p:
        p.generate("hello", max_tokens=4)
        assert p.planner["calibration"] == {}


@pytest.mark.parametrize("call, calibrates", [
    (dict(method="fs", router="budget"), False),  # no guard under a budget: no cost curve needed
    (dict(method="fs", router="never"), False),
    (dict(method="fs", guard=False), False),
    (dict(method="small"), False),
    (dict(method="fs"), True),                    # the guard weighs the large model's cost
    (dict(method="speculative"), True),
    (dict(method="large", draft="ngram"), True),
])
def test_calibration_only_where_the_plan_needs_it(tiny_small, tiny_large, tmp_path, monkeypatch, call, calibrates):
    """The core's plan of the call decides (fsgen._core.plan_for), not a copy of its rules."""
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path))
    with fsgen.Pair(tiny_small, tiny_large, calibrate=True, **CTX) as p:
        p.generate("hello", max_tokens=2, **call)
        assert (p.planner["calibration"] != {}) == calibrates
    assert (tmp_path / "calibration").exists() == calibrates


def test_model_calibrate(model, tmp_path, monkeypatch):
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path))
    figures = model.calibrate()
    assert set(figures["calibration"]["verify_seconds"]) >= {1, 2, 4, 8, 16}
    assert figures["calibration"]["draft_seconds"] is None  # one model: no System 1
    assert figures["draft_length"]["ngram"] >= 0


def threads_of_this_process() -> int:
    """Threads of this process once their number has settled (an OpenMP team ends asynchronously
    after the thread that led it)."""
    count, stable_since, deadline = -1, time.monotonic(), time.monotonic() + 5
    while time.monotonic() < deadline:
        now = len(os.listdir("/proc/self/task"))
        if now != count:
            count, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since > 0.3:
            break
        time.sleep(0.02)
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_calibration_leaves_no_thread_team_behind(tiny_small, tiny_large, tmp_path, monkeypatch):
    """Calibrating decodes on a thread of its own, as generations do: ggml's OpenMP team belongs
    to the thread that decodes, and one left on the caller's thread (Python's main thread) slowed
    every later generation in the process by about a third (measured on the demo pair)."""
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path))
    with fsgen.Pair(tiny_small, tiny_large, n_ctx=256, n_threads=2) as p:
        p.generate("hello", method="speculative", draft="model", max_tokens=4)  # both contexts exist
        before = threads_of_this_process()
        p.calibrate()
        assert threads_of_this_process() == before
