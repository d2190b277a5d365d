"""Property test (hypothesis): random methods, routers, thresholds, sampling parameters, prompts
and lengths through the Python API on the tiny bed.

Whatever is drawn, fsgen does not crash; a valid draw gives a consistent Result (finish reason,
trace length, statistics that agree with the trace, text that agrees with the tokens); a draw
with one bad argument raises InvalidArgumentError before any work. derandomize=True: the same
examples every run, so it cannot flake.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import require

hypothesis = require("hypothesis", "pip install 'fsgen[test]'")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

import fsgen  # noqa: E402
from helpers import METHODS, ROUTERS, SYSTEM2  # noqa: E402

N_CTX = 256
FINISH_REASONS = {"eog", "stop", "length", "cancelled"}
SETTINGS = dict(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def pair(tiny_mixed, tiny_large, tiny_small):
    # tiny_mixed as System 1: unsure about half the time, so the routers really route.
    with fsgen.Pair(tiny_mixed, tiny_large, small_base=tiny_small, n_ctx=N_CTX, n_threads=1) as p:
        yield p


# ---- what is drawn ----

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
prompts = st.one_of(
    st.text(min_size=1, max_size=40),                                   # any unicode (no surrogates)
    st.text(alphabet="abcdefghij klmnop\n,.é€😀", min_size=1, max_size=60),
    st.sampled_from(["hello world", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "\x00", " "]),
)


@st.composite
def method_params(draw, method):
    params = {}
    if method == "speculative":
        params["draft_max"] = draw(st.one_of(st.none(), st.integers(1, 32)))
        if draw(st.booleans()):
            params["draft_p_min"] = draw(unit)
    if method in ("fs", "oracle"):
        params["router"] = draw(st.sampled_from(ROUTERS))
        # Each router takes its own parameters (the core's table): a threshold, a share, or none.
        if params["router"] in ("entropy", "top1", "margin") and draw(st.booleans()):
            params["threshold"] = draw(st.floats(min_value=-1.0, max_value=8.0, allow_nan=False))
        if params["router"] == "budget" and draw(st.booleans()):
            params["system2_share"] = draw(st.floats(min_value=0.01, max_value=1.0))
        params["system2"] = draw(st.sampled_from(SYSTEM2))
    kind = params.get("system2", method)
    if kind == "contrastive":
        if draw(st.booleans()):
            params["alpha"] = draw(st.floats(min_value=1e-3, max_value=1.0))
        if draw(st.booleans()):
            params["beta"] = draw(st.floats(min_value=0.0, max_value=4.0))
        if draw(st.booleans()):
            params["variant"] = draw(st.sampled_from(["standard", "fsgen"]))
    if kind == "proxy" and draw(st.booleans()):
        params["alpha"] = draw(st.floats(min_value=-2.0, max_value=3.0))
    return params


@st.composite
def sampling(draw):
    if draw(st.booleans()):
        return {"temperature": 0.0}
    return {
        "temperature": draw(st.floats(min_value=0.05, max_value=2.0)),
        "top_k": draw(st.integers(-1, 100)),
        "top_p": draw(st.floats(min_value=0.01, max_value=1.0)),
        "min_p": draw(unit),
        "seed": draw(st.integers(0, 2**64 - 1)),
    }


@st.composite
def calls(draw):
    method = draw(st.sampled_from(METHODS))
    kwargs = dict(method=method, max_tokens=draw(st.integers(0, 40)), trace=True,
                  **draw(method_params(method)), **draw(sampling()))
    if draw(st.integers(0, 4)) == 0:
        kwargs["stop"] = draw(st.lists(st.text(min_size=1, max_size=3), min_size=1, max_size=3))
    return draw(prompts), kwargs


# One bad argument on top of a valid call: (name, value) pairs; None removes nothing.
BAD = [
    ("temperature", -0.5), ("temperature", math.nan), ("temperature", math.inf), ("top_p", 0.0), ("top_p", 1.5),
    ("top_p", math.nan), ("min_p", -0.1), ("min_p", 2.0), ("max_tokens", -1), ("max_tokens", 1 << 40),
    ("max_tokens", 2.5), ("seed", -1), ("top_k", "40"), ("stop", [""]), ("stop", 5), ("method", "bogus"),
    ("method", None), ("trace", object()),
]


@st.composite
def bad_calls(draw):
    prompt, kwargs = draw(calls())
    choice = draw(st.integers(0, len(BAD) + 8))
    if choice < len(BAD):
        name, value = BAD[choice]
        if name == "trace":  # trace=anything is accepted as a flag; use a bad draft_max instead
            kwargs.update(method="speculative", draft_max=draw(st.sampled_from([0, 257, -3])))
        else:
            kwargs[name] = value
    elif choice == len(BAD):
        kwargs.update(method="fs", router=draw(st.sampled_from(["bogus", "", "Entropy"])))
    elif choice == len(BAD) + 1:
        kwargs.update(method="oracle", threshold=math.nan)
    elif choice == len(BAD) + 2:
        kwargs.update(method="contrastive", alpha=draw(st.sampled_from([0.0, -1.0, 1.5, math.nan])))
    elif choice == len(BAD) + 3:
        kwargs.update(method="fs", system2=draw(st.sampled_from(["bogus", "small"])))
    elif choice == len(BAD) + 4:
        prompt = ""
    elif choice == len(BAD) + 5:
        prompt = draw(st.text(min_size=0, max_size=5)) + "\ud800"  # a lone surrogate: not UTF-8
    elif choice == len(BAD) + 6:
        kwargs["unknown_parameter"] = 1
    elif choice == len(BAD) + 7:
        kwargs.update(method="small", draft_max=4)  # a parameter of another method
    else:
        kwargs.update(method="proxy", alpha=math.inf)
    return prompt, kwargs


# ---- checks ----

def check(result, kwargs, pair):
    n = len(result.tokens)
    stats = result.stats
    trace = result.trace
    assert result.finish_reason in FINISH_REASONS - {"cancelled"}
    assert stats["n_tokens"] == n == len(trace)
    assert trace.token.tolist() == result.tokens
    assert n <= kwargs["max_tokens"]
    assert stats["n_prompt_tokens"] + n <= N_CTX
    if result.finish_reason == "length":
        assert n == kwargs["max_tokens"] or stats["n_prompt_tokens"] + n == N_CTX
    system2 = trace.source != 0
    assert stats["system2_fraction"] == pytest.approx(float(system2.mean()) if n else 0.0)
    assert stats["mismatches"] == int(trace.mismatch.sum())
    assert stats["mismatch_fraction"] == pytest.approx(stats["mismatches"] / n if n else 0.0)
    assert not (trace.mismatch & ~trace.system2_called).any()
    assert stats["drafted"] == int(trace.drafts.length.sum())
    assert stats["accepted"] == int(trace.drafts.accepted.sum()) <= stats["drafted"]
    assert set(np.unique(trace.source).tolist()) <= {0, 1, 2}
    method = kwargs["method"]
    if method == "small" or (method == "fs" and kwargs.get("router") == "never"):
        assert not system2.any() and stats["system2_calls"] == 0
    # fs's guard hands the writing to speculative verification (System 1's accepted drafts).
    guarded = stats["guard_tokens"] > 0
    assert not guarded or method == "fs"
    if method in ("large", "contrastive", "proxy", "oracle") or (method == "fs" and kwargs.get("router") == "always"
                                                                 and not guarded):
        assert system2.all()
    if method != "speculative" and not guarded:
        assert stats["drafted"] == 0
    for value in stats.values():
        assert math.isfinite(value) and value >= 0
    offsets = trace.text_offset
    if n:
        assert offsets[0] == 0 and (np.diff(offsets) >= 0).all() and offsets[-1] <= len(result.text)
    if result.finish_reason != "stop":
        # The text is the tokens' text (tokens ending inside a character give U+FFFD).
        assert result.text == pair.large.detokenize(result.tokens)


@settings(max_examples=300, **SETTINGS)
@given(call=calls())
def test_random_calls_are_consistent(pair, call):
    prompt, kwargs = call
    result = pair.generate(prompt, **kwargs)
    check(result, kwargs, pair)
    if kwargs.get("temperature", 0.0) == 0.0 and kwargs["method"] != "speculative":
        assert pair.generate(prompt, **kwargs).tokens == result.tokens


@settings(max_examples=80, **SETTINGS)
@given(call=calls())
def test_random_streams_match_their_result(pair, call):
    prompt, kwargs = call
    stream = pair.stream(prompt, **kwargs)
    text = "".join(chunk.text for chunk in stream)
    check(stream.result, kwargs, pair)
    assert text == stream.result.text


@settings(max_examples=80, **SETTINGS)
@given(prompt=prompts, max_tokens=st.integers(0, 40), draft_max=st.one_of(st.none(), st.integers(1, 32)),
       draft_p_min=unit)
def test_random_calls_greedy_speculative_equals_large(pair, prompt, max_tokens, draft_max, draft_p_min):
    """Greedy speculative decoding, whatever the draft length, writes what the large model does."""
    speculative = pair.generate(prompt, method="speculative", max_tokens=max_tokens, draft_max=draft_max,
                                draft_p_min=draft_p_min)
    assert speculative.tokens == pair.generate(prompt, method="large", max_tokens=max_tokens).tokens


@settings(max_examples=200, **SETTINGS)
@given(call=bad_calls())
def test_bad_arguments_raise_invalid_argument_error(pair, call):
    prompt, kwargs = call
    try:
        result = pair.generate(prompt, **kwargs)
    except fsgen.InvalidArgumentError:
        return
    # Some draws are valid after all (e.g. stop=[""] replaced nothing): then the result is sound.
    check(result, kwargs, pair)
    pytest.fail(f"no InvalidArgumentError for {prompt!r} {kwargs}")


@settings(max_examples=60, **SETTINGS)
@given(prompt=prompts, max_tokens=st.integers(0, 30), params=sampling())
def test_random_model_calls(tiny_small, prompt, max_tokens, params):
    model = _model(tiny_small)
    result = model.generate(prompt, max_tokens=max_tokens, trace=True, **params)
    assert result.finish_reason in FINISH_REASONS - {"cancelled"}
    assert len(result.trace) == len(result.tokens) == result.stats["n_tokens"] <= max_tokens
    assert not (result.trace.source != 0).any()


_MODELS: dict = {}


def _model(path):
    if path not in _MODELS:
        _MODELS[path] = fsgen.Model(path, n_ctx=N_CTX, n_threads=1)
    return _MODELS[path]


def teardown_module(module):
    for model in _MODELS.values():
        model.close()
    _MODELS.clear()
