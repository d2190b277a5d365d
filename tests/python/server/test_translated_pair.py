"""`fsgen serve` on a translated pair (tokenizers that differ): /v1/models says so; fs (at its
defaults and without the guard), oracle and speculative answer as the Python API does, streamed
pieces carry who wrote them; contrastive and proxy are a 400 `incompatible_vocab`."""
from __future__ import annotations

import httpx
import pytest

import fsgen
from helpers import TINY, require
from serve_process import REQUEST_TIMEOUT, SERVE_EXTRAS, Server, pieces, sse_events

MESSAGES = [{"role": "user", "content": "hello world"}]
FS = {"method": "fs", "threshold": 0.3, "guard": False}  # fs itself writing, System 2 consulted on some tokens


@pytest.fixture(scope="module")
def server(tiny_small, tiny_spm, tiny_small_base):
    # A proxy base that shares System 1's vocabulary: proxy is refused for the large model's.
    with Server("--small", tiny_small, "--large", tiny_spm, "--small-base", tiny_small_base,
                "--threads", 1, "--n-ctx", 512) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    openai = require("openai", SERVE_EXTRAS)
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", timeout=REQUEST_TIMEOUT, max_retries=0)


@pytest.fixture(scope="module")
def pair(tiny_small, tiny_spm):
    with fsgen.Pair(tiny_small, tiny_spm, **TINY) as p:
        yield p


def test_models_report_the_vocabulary_relation(client, pair):
    model = client.models.list().data[0]
    info = model.model_extra["fsgen"]
    assert model.id == "tiny_small+tiny_spm"
    assert info["vocab"] == pair.vocab and info["vocab"]["kind"] == "translated"
    assert {"fs", "oracle", "speculative"} <= set(info["methods"])


@pytest.mark.parametrize("params", [FS, {"method": "fs"}, {"method": "oracle"}, {"method": "speculative"},
                                    {"method": "large"}, {"method": "small"}])
def test_methods_that_meet_in_text_answer(client, pair, params):
    r = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=24, temperature=0,
                                       extra_body=params)
    text = r.choices[0].message.content
    assert text and r.model_extra["timings"]["method"] == params["method"]
    if params.get("guard", True) and params["method"] == "fs":  # the guard's hand-overs follow the cost table
        assert r.usage.completion_tokens <= 24
        return
    expected = pair.generate(messages=MESSAGES, max_tokens=24, temperature=0.0, **params)
    assert text == expected.text and r.usage.completion_tokens == len(expected.tokens)
    if params["method"] != "speculative":
        assert r.model_extra["timings"]["system2_calls"] == expected.stats["system2_calls"]


def test_streamed_fs_pieces_carry_their_sources(server, pair):
    expected = [(c.text, int(c.source)) for c in pair.stream(messages=MESSAGES, max_tokens=40, **FS) if c.text]
    with httpx.stream("POST", server.url + "/v1/chat/completions", timeout=REQUEST_TIMEOUT,
                      json={"messages": MESSAGES, "max_tokens": 40, "temperature": 0, "stream": True, **FS}) as r:
        assert r.status_code == 200
        got = pieces(sse_events(r))
    assert got == expected
    assert {s for _, s in got} == {0, 1}, "System 1's and System 2's pieces, for the page to colour"


@pytest.mark.parametrize("params", [{"method": "contrastive"}, {"method": "proxy"},
                                    {"method": "fs", "system2": "contrastive"}])
def test_methods_that_combine_scores_are_a_400(client, params):
    openai = require("openai", SERVE_EXTRAS)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=8, extra_body=params)
    error = info.value.body
    assert error["code"] == "incompatible_vocab" and error["param"] == "method"
    assert "one vocabulary" in error["message"]
