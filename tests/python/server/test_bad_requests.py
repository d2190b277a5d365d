"""Bad requests to `fsgen serve` over raw HTTP: each gets its status and an OpenAI-style error body,
and the server keeps answering /health after every one."""
from __future__ import annotations

import json

import httpx
import pytest

from processes import run_cli
from serve_process import REQUEST_TIMEOUT, Server, assert_openai_error

CHAT = "/v1/chat/completions"
OK_MESSAGES = [{"role": "user", "content": "hi"}]

BAD = [  # (name, path, raw body or JSON object, status, words in the message)
    ("malformed json", CHAT, b'{"messages": [', 400, ["not valid JSON"]),
    ("not an object", CHAT, [1, 2], 400, ["JSON object"]),
    ("invalid utf-8", CHAT, b'{"messages": "\xff"}', 400, ["JSON"]),
    ("messages missing", CHAT, {"model": "x"}, 400, ["'messages' is required"]),
    ("messages a string", CHAT, {"messages": "hi"}, 400, ["messages"]),
    ("content a number", CHAT, {"messages": [{"role": "user", "content": 5}]}, 400, ["messages[0]"]),
    ("image part", CHAT, {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     400, ["only text parts"]),
    ("temperature a string", CHAT, {"messages": OK_MESSAGES, "temperature": "hot"}, 400, ["temperature"]),
    ("max_tokens a string", CHAT, {"messages": OK_MESSAGES, "max_tokens": "5"}, 400, ["max_tokens"]),
    ("negative max_tokens", CHAT, {"messages": OK_MESSAGES, "max_tokens": -1}, 400, ["max_tokens"]),
    ("stream a string", CHAT, {"messages": OK_MESSAGES, "stream": "yes"}, 400, ["stream"]),
    ("stop a number", CHAT, {"messages": OK_MESSAGES, "stop": 3}, 400, ["stop"]),
    ("seed negative", CHAT, {"messages": OK_MESSAGES, "seed": -1}, 400, ["seed"]),
    ("unknown method", CHAT, {"messages": OK_MESSAGES, "method": "nope"}, 400, ["unknown method", "speculative"]),
    ("method a number", CHAT, {"messages": OK_MESSAGES, "method": 3}, 400, ["method"]),
    ("parameter of another method", CHAT, {"messages": OK_MESSAGES, "method": "speculative", "beta": 0.5}, 400,
     ["beta", "draft_max"]),
    ("threshold a string", CHAT, {"messages": OK_MESSAGES, "method": "fs", "threshold": "high"}, 400, ["threshold"]),
    ("unknown router", CHAT, {"messages": OK_MESSAGES, "method": "fs", "router": "coin"}, 400, ["router"]),
    ("misspelt field", CHAT, {"messages": OK_MESSAGES, "treshold": 0.5}, 400, ["treshold"]),
    ("n=2", CHAT, {"messages": OK_MESSAGES, "n": 2}, 400, ["'n' must be 1"]),
    ("tools", CHAT, {"messages": OK_MESSAGES, "tools": [{"type": "function", "function": {"name": "f"}}]}, 400,
     ["'tools'"]),
    ("tool_choice", CHAT, {"messages": OK_MESSAGES, "tool_choice": "auto"}, 400, ["'tool_choice'"]),
    ("response_format", CHAT, {"messages": OK_MESSAGES, "response_format": {"type": "json_object"}}, 400,
     ["'response_format'"]),
    ("logit_bias", CHAT, {"messages": OK_MESSAGES, "logit_bias": {"1": 5}}, 400, ["'logit_bias'"]),
    ("echo", "/v1/completions", {"prompt": "hi", "echo": True}, 400, ["'echo'"]),
    ("logprobs", CHAT, {"messages": OK_MESSAGES, "logprobs": True}, 400, ["'logprobs'"]),
    ("presence penalty", CHAT, {"messages": OK_MESSAGES, "presence_penalty": 1.0}, 400, ["presence_penalty"]),
    ("prompt a list of lists", "/v1/completions", {"prompt": [[1, 2]]}, 400, ["prompt"]),
    ("prompt over the context", "/v1/completions", {"prompt": "x " * 9000, "max_tokens": 4}, 400, ["tokens"]),
    ("empty prompt", "/v1/completions", {"prompt": ""}, 400, ["empty"]),
]


@pytest.mark.parametrize("name, path, body, status, words", BAD, ids=[b[0] for b in BAD])
def test_bad_request(tiny_server, name, path, body, status, words):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(tiny_server.url + path, content=content, headers={"Content-Type": "application/json"},
                   timeout=REQUEST_TIMEOUT)
    error = assert_openai_error(r, status, *words)
    if name == "prompt over the context":
        assert error["code"] == "context_length_exceeded"
    assert httpx.get(tiny_server.url + "/health", timeout=10).status_code == 200


def test_fields_that_ask_for_nothing_are_accepted(tiny_server):
    body = {"messages": OK_MESSAGES, "max_tokens": 2, "temperature": 0, "tools": [], "tool_choice": "none",
            "response_format": {"type": "text"}, "logit_bias": {}, "logprobs": False, "top_logprobs": None,
            "presence_penalty": 0, "frequency_penalty": 0.0, "user": "someone", "n": 1, "stream_options": None}
    r = httpx.post(tiny_server.url + CHAT, json=body, timeout=REQUEST_TIMEOUT)
    assert r.status_code == 200, r.text


def test_a_model_that_does_not_load_exits_1(tmp_path):
    done = run_cli("serve", "--model", tmp_path / "missing.gguf", "--port", "0", timeout=60)
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert "missing.gguf" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_unknown_route_and_wrong_verb(tiny_server):
    assert_openai_error(httpx.get(tiny_server.url + "/v1/nothing", timeout=10), 404)
    assert_openai_error(httpx.get(tiny_server.url + CHAT, timeout=10), 405)
    assert httpx.get(tiny_server.url + "/health", timeout=10).status_code == 200


def test_key_body_limit_and_cors(tiny_small, tiny_large):
    """--api-key: /v1 needs the Bearer key (the page and /health do not); --max-body-bytes: 413;
    CORS headers only for the --cors-origin origin."""
    with Server("--small", tiny_small, "--large", tiny_large, "--threads", 1, "--n-ctx", 256, "--api-key", "s3cret",
                "--max-body-bytes", 2048, "--cors-origin", "http://app.example") as server:
        url = server.url
        body = {"messages": OK_MESSAGES, "max_tokens": 4, "temperature": 0}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
                        {"Authorization": "Basic s3cret"}):
            error = assert_openai_error(httpx.post(url + CHAT, json=body, headers=headers, timeout=REQUEST_TIMEOUT),
                                        401, "API key")
            assert error["code"] == "invalid_api_key"
            assert_openai_error(httpx.get(url + "/v1/models", headers=headers, timeout=10), 401)
            assert httpx.get(url + "/health", timeout=10).status_code == 200
        good = {"Authorization": "Bearer s3cret"}
        assert httpx.post(url + CHAT, json=body, headers=good, timeout=REQUEST_TIMEOUT).status_code == 200
        assert httpx.get(url + "/v1/models", headers=good, timeout=10).status_code == 200
        assert httpx.get(url + "/", timeout=10).status_code == 200
        big = dict(body, messages=[{"role": "user", "content": "x" * 4096}])
        assert_openai_error(httpx.post(url + CHAT, json=big, headers=good, timeout=REQUEST_TIMEOUT), 413, "bytes")
        assert httpx.get(url + "/health", timeout=10).status_code == 200
        # CORS: the allowed origin gets its header; another origin gets none.
        pre = httpx.options(url + CHAT, headers={"Origin": "http://app.example", "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "authorization"}, timeout=10)
        assert pre.headers.get("access-control-allow-origin") == "http://app.example"
        other = httpx.get(url + "/health", headers={"Origin": "http://evil.example"}, timeout=10)
        assert "access-control-allow-origin" not in other.headers


def test_no_cors_by_default(tiny_server):
    r = httpx.get(tiny_server.url + "/health", headers={"Origin": "http://app.example"}, timeout=10)
    assert "access-control-allow-origin" not in r.headers
    pre = httpx.options(tiny_server.url + CHAT, headers={"Origin": "http://app.example",
                                                         "Access-Control-Request-Method": "POST"}, timeout=10)
    assert "access-control-allow-origin" not in pre.headers


def test_a_method_the_tokenizers_do_not_allow_is_a_400():
    """fs on a pair whose tokenizers differ: the client's choice, not a server failure."""
    import fsgen
    from fsgen.server.state import map_error
    error = map_error(fsgen.IncompatibleVocabError("fs combines the models token by token, which needs one vocabulary"))
    assert (error.status, error.code, error.param) == (400, "incompatible_vocab", "method")
