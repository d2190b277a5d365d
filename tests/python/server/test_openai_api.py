"""`fsgen serve` through the official openai client: chat and completions, streaming and not, fsgen's
own fields through extra_body, usage and timings, typed errors; /v1/models, /health, /metrics."""
from __future__ import annotations

import httpx
import pytest

import fsgen
from helpers import TINY, require
from serve_process import REQUEST_TIMEOUT, SERVE_EXTRAS

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello world"}]


@pytest.fixture(scope="module")
def client(tiny_server):
    openai = require("openai", SERVE_EXTRAS)
    return openai.OpenAI(base_url=tiny_server.url + "/v1", api_key="unused", timeout=REQUEST_TIMEOUT, max_retries=0)


@pytest.fixture(scope="module")
def pair(tiny_small, tiny_large, tiny_small_base):
    with fsgen.Pair(tiny_small, tiny_large, small_base=tiny_small_base, **TINY) as p:
        yield p


def check_timings(timings: dict, usage, method: str) -> None:
    assert timings["method"] == method
    assert timings["predicted_n"] == usage.completion_tokens
    assert timings["prompt_n"] + timings["cache_n"] == usage.prompt_tokens
    assert usage.prompt_tokens_details.cached_tokens == timings["cache_n"]
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert 0 <= timings["draft_n_accepted"] <= timings["draft_n"]
    assert 0.0 <= timings["system2_fraction"] <= 1.0
    assert timings["prompt_ms"] >= 0 and timings["predicted_ms"] >= 0 and timings["predicted_per_second"] >= 0
    assert isinstance(timings["system2_calls"], int)


@pytest.mark.parametrize("method, params", [
    ("speculative", {}), ("fs", {"router": "entropy", "threshold": 0.3, "guard": False}), ("contrastive", {"beta": 0.7}),
    ("proxy", {"alpha": 0.5}), ("small", {}), ("large", {})])
def test_chat_matches_the_python_api(client, pair, method, params):
    r = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=24, temperature=0,
                                       extra_body=dict(method=method, **params))
    expected = pair.generate(messages=MESSAGES, method=method, max_tokens=24, temperature=0.0, **params)
    assert r.object == "chat.completion" and len(r.choices) == 1
    assert r.choices[0].message.content == expected.text
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason == {"eog": "stop", "stop": "stop", "length": "length"}[expected.finish_reason]
    assert r.usage.completion_tokens == len(expected.tokens)
    assert r.usage.prompt_tokens == expected.stats["n_prompt_tokens"]
    timings = r.model_extra["timings"]
    check_timings(timings, r.usage, method)
    if method != "speculative":  # adaptive drafting depends on measured speed: counts vary run to run
        assert timings["system2_calls"] == expected.stats["system2_calls"]
        assert timings["system2_fraction"] == pytest.approx(expected.stats["system2_fraction"])


def test_chat_stream_carries_sources_usage_and_timings(client, pair):
    stream = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=40, temperature=0,
                                            stream=True, stream_options={"include_usage": True},
                                            extra_body={"method": "speculative", "draft": "model", "draft_max": 4})
    chunks = list(stream)
    # A fixed draft source and length: which tokens are accepted drafts does not depend on measured
    # speed ("auto" picks the source by it).
    expected_stream = pair.stream(messages=MESSAGES, method="speculative", draft="model", draft_max=4,
                                  max_tokens=40)
    expected_chunks = list(expected_stream)
    pieces = [(c.choices[0].delta.content, c.choices[0].delta.model_extra["fsgen_source"],
               c.choices[0].delta.model_extra["fsgen_draft"])
              for c in chunks if c.choices and c.choices[0].delta.content]
    assert {s for _, s, _ in pieces} >= {0, 1}, "accepted drafts and System 2's tokens"
    assert {d for _, _, d in pieces} == {None, "model"}
    assert all(s == 0 for _, s, d in pieces if d == "model"), "System 1 wrote its accepted drafts"
    assert pieces == [(c.text, int(c.source), c.draft) for c in expected_chunks if c.text]
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason in ("stop", "length")
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage.completion_tokens == len(expected_stream.result.tokens)
    check_timings(finish[0].model_extra["timings"], usage, "speculative")


def test_completions_stream_names_ngram_drafts(client, pair):
    """fsgen_draft "ngram": an accepted n-gram draft, which System 2 verified (fsgen_source 1)."""
    start = "hello world"
    prompt = start + pair.generate(start, method="large", max_tokens=24).text + start  # the continuation repeats
    params = {"method": "speculative", "draft": "ngram", "draft_max": 4}
    streamed = list(client.completions.create(model="tiny", prompt=prompt, max_tokens=24, temperature=0, stream=True,
                                              extra_body=params))
    pieces = [(c.choices[0].text, c.choices[0].model_extra["fsgen_source"], c.choices[0].model_extra["fsgen_draft"])
              for c in streamed if c.choices and c.choices[0].text]
    assert "ngram" in {d for _, _, d in pieces}
    assert all(s == 1 for _, s, d in pieces if d == "ngram")
    assert pieces == [(c.text, int(c.source), c.draft) for c in pair.stream(prompt, max_tokens=24, **params) if c.text]


def test_completions_stream_and_not(client, pair):
    expected = pair.generate("Once upon a time", method="speculative", max_tokens=30, temperature=0.0)
    r = client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=30, temperature=0)
    assert r.object == "text_completion" and r.choices[0].text == expected.text
    assert r.usage.completion_tokens == len(expected.tokens)
    check_timings(r.model_extra["timings"], r.usage, "speculative")
    streamed = list(client.completions.create(model="tiny", prompt="Once upon a time", max_tokens=30, temperature=0,
                                              stream=True))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == expected.text
    assert streamed[-1].choices[0].finish_reason in ("stop", "length")


def test_stop_and_content_parts(client, pair):
    expected = pair.generate(messages=MESSAGES, method="speculative", max_tokens=40, temperature=0.0)
    stop = expected.text[10:13]
    assert stop, "the tiny pair should write more than a few characters"
    r = client.chat.completions.create(
        model="tiny", max_tokens=40, temperature=0, stop=[stop],
        messages=[MESSAGES[0], {"role": "user", "content": [{"type": "text", "text": "hello "},
                                                              {"type": "text", "text": "world"}]}])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == expected.text[:expected.text.index(stop)]


def test_errors_are_the_sdks_typed_exceptions(client):
    openai = require("openai", SERVE_EXTRAS)
    with pytest.raises(openai.BadRequestError, match="unknown method"):
        client.chat.completions.create(model="tiny", messages=MESSAGES, extra_body={"method": "nope"})
    with pytest.raises(openai.BadRequestError, match="threshold") as info:
        client.chat.completions.create(model="tiny", messages=MESSAGES, extra_body={"method": "small",
                                                                                     "threshold": 0.5})
    assert info.value.status_code == 400
    with pytest.raises(openai.BadRequestError, match="'n' must be 1"):
        client.chat.completions.create(model="tiny", messages=MESSAGES, n=2)
    with pytest.raises(openai.BadRequestError, match="'tools' is not supported"):
        client.chat.completions.create(model="tiny", messages=MESSAGES, tools=[
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}])
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.chat.completions.create(model="tiny", messages=MESSAGES, response_format={"type": "json_object"})
    with pytest.raises(openai.BadRequestError, match="logprobs"):
        client.chat.completions.create(model="tiny", messages=MESSAGES, logprobs=True)
    # Accepted and ignored: user, logprobs false, n=1.
    r = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=4, temperature=0, user="u",
                                       logprobs=False, n=1)
    assert r.choices[0].message.content is not None


def test_models_health_metrics(tiny_server, client):
    models = client.models.list().data
    assert len(models) == 1 and models[0].id == "tiny_small+tiny_large"
    info = models[0].model_extra["fsgen"]
    assert set(info["methods"]) >= {"small", "large", "speculative", "contrastive", "proxy", "fs", "oracle"}
    assert info["default_method"] == "speculative"
    assert info["vocab"]["kind"] == "shared" and info["vocab"]["overlap"] == 1.0
    assert httpx.get(tiny_server.url + "/health", timeout=10).json() == {"status": "ok"}
    text = httpx.get(tiny_server.url + "/metrics", timeout=10).text
    for name in ("fsgen_requests_total", "fsgen_tokens_generated_total", "fsgen_system2_share",
                 "fsgen_draft_acceptance", "fsgen_queue_depth", "fsgen_request_seconds_bucket",
                 "fsgen_first_token_seconds_bucket"):
        assert name in text, name
    assert tiny_server.metric("fsgen_requests_total", endpoint="/v1/chat/completions", status="200") >= 1
    assert tiny_server.metric("fsgen_tokens_generated_total", source="system1") > 0


def test_a_prompt_seen_before_comes_from_the_prompt_cache(tiny_server):
    """Two conversations taking turns: the third request's prompt is restored, not read again, and
    the response and /metrics say so."""
    first = ("Once upon a time, in a land far away, there lived a king who counted his coins every morning "
             "and every evening, and never once smiled at the sum, nor at the queen, nor at the sea.")
    second = ("def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n"
              "print(add(2, 3), sub(5, 1))  # five and four, and nothing else")
    before = tiny_server.metric("fsgen_prompt_cached_tokens_total")
    bodies = []
    for prompt in (first, second, first):
        r = httpx.post(tiny_server.url + "/v1/completions", timeout=REQUEST_TIMEOUT,
                       json={"prompt": prompt, "max_tokens": 8, "temperature": 0, "method": "large"})
        assert r.status_code == 200, r.text
        bodies.append(r.json())
    usage, timings = bodies[2]["usage"], bodies[2]["timings"]
    assert usage["prompt_tokens"] > 80
    assert usage["prompt_tokens_details"]["cached_tokens"] == timings["cache_n"] == usage["prompt_tokens"] - 1
    assert timings["prompt_n"] == 1
    assert bodies[2]["choices"][0]["text"] == bodies[0]["choices"][0]["text"]
    tiny_server.wait_metric("fsgen_prompt_cached_tokens_total", before + sum(
        b["usage"]["prompt_tokens_details"]["cached_tokens"] for b in bodies))


@pytest.mark.parametrize("method, source", [("contrastive", "combined"), ("large", "system2")])
def test_whole_answers_count_tokens_by_who_wrote_them(tiny_server, method, source):
    before = {s: tiny_server.metric("fsgen_tokens_generated_total", source=s) for s in ("system2", "combined")}
    r = httpx.post(tiny_server.url + "/v1/completions", json={"prompt": "hello world", "max_tokens": 8,
                                                              "method": method, "temperature": 0},
                   timeout=REQUEST_TIMEOUT)
    assert r.status_code == 200, r.text
    n = r.json()["usage"]["completion_tokens"]
    tiny_server.wait_metric("fsgen_tokens_generated_total", before[source] + n, source=source)
    other = "system2" if source == "combined" else "combined"
    assert tiny_server.metric("fsgen_tokens_generated_total", source=other) == before[other]


def test_command_line_defaults_apply_to_their_method_only(tiny_small, tiny_large):
    """--method fs --threshold 0.2 --temperature 0: a request without a method gets fs at 0.2; one for
    speculative gets speculative without the fs option (no 400). And max_tokens is clamped."""
    from serve_process import Server
    messages = [{"role": "user", "content": "the"}]
    with fsgen.Pair(tiny_small, tiny_large, **TINY) as p:
        # Without fs's guard, whose hand-overs follow measured speed.
        fs = p.generate(messages=messages, method="fs", threshold=0.2, guard=False, max_tokens=16).text
        spec = p.generate(messages=messages, method="speculative", max_tokens=16).text
    with Server("--small", tiny_small, "--large", tiny_large, "--threads", 1, "--n-ctx", 256, "--method", "fs",
                "--threshold", 0.2, "--no-guard", "--temperature", 0, "--max-tokens", 16) as server:
        post = lambda body: httpx.post(server.url + "/v1/chat/completions", json=body, timeout=REQUEST_TIMEOUT)
        r = post({"messages": messages})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == fs and r.json()["timings"]["method"] == "fs"
        r = post({"messages": messages, "method": "speculative"})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == spec
        # max_tokens beyond the context: clamped to the room left (the context holds 256 tokens).
        r = httpx.post(server.url + "/v1/completions", json={"prompt": "hello world", "max_tokens": 10 ** 9,
                                                             "method": "small"}, timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200, r.text
        usage = r.json()["usage"]
        assert r.json()["choices"][0]["finish_reason"] == "length" and usage["total_tokens"] == 256
