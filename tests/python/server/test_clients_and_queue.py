"""`fsgen serve` under several clients: the FIFO line, greedy outputs equal to one client's, clients that
leave mid-stream or while waiting stop their generations, a full line, /health while a generation
runs, and Ctrl-C (SIGINT) ending the server cleanly."""
from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import httpx
import pytest

from helpers import require
from serve_process import REQUEST_TIMEOUT, SERVE_EXTRAS, Server, assert_openai_error, pieces, sse_events

CHAT = "/v1/chat/completions"
# A generation long enough (thousands of tokens over a long context) to leave or stop it midway.
LONG = {"prompt": "the", "max_tokens": 8000, "method": "small", "temperature": 0}


def request(url: str, i: int, stream: bool) -> str:
    method = ("speculative", "fs", "contrastive", "large")[i % 4]
    body = {"messages": [{"role": "user", "content": f"tell me about {i}"}], "max_tokens": 24 + i, "temperature": 0,
            "method": method, "stream": stream}
    if method == "speculative":
        body["draft_max"] = 3
    if method == "fs":
        body["guard"] = False  # its hand-overs follow measured speed, which concurrency changes
    if stream:
        with httpx.stream("POST", url + CHAT, json=body, timeout=REQUEST_TIMEOUT) as r:
            assert r.status_code == 200, r.read()
            return "".join(text for text, _ in pieces(sse_events(r)))
    r = httpx.post(url + CHAT, json=body, timeout=REQUEST_TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["message"]["content"]


def test_eight_clients_get_their_single_client_outputs(tiny_server):
    url = tiny_server.url
    alone = [request(url, i, stream=False) for i in range(8)]
    assert len(set(alone)) > 1
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda i: request(url, i, stream=i % 2 == 0), range(8)))
    assert together == alone


def start_raw(url: str, body: dict) -> socket.socket:
    """Send a request on a raw socket and return it unread (closing it is the client leaving)."""
    u = urlparse(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=REQUEST_TIMEOUT)
    data = json.dumps(body).encode()
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
    return sock


def test_clients_that_leave_stop_their_generations(tiny_server):
    server, url = tiny_server, tiny_server.url
    cancelled = server.metric("fsgen_generations_total", finish="cancelled")
    left = server.metric("fsgen_left_queue_total")
    # A: streams a long generation; B waits behind it, and leaves while waiting.
    with httpx.stream("POST", url + "/v1/completions", json=dict(LONG, stream=True), timeout=REQUEST_TIMEOUT) as a:
        assert a.status_code == 200
        lines = a.iter_lines()
        next(line for line in lines if line.startswith("data: "))
        b = start_raw(url, dict(LONG, stream=False))
        server.wait_metric("fsgen_queue_depth", 1)
        assert httpx.get(url + "/health", timeout=10).status_code == 200
        b.close()
        server.wait_metric("fsgen_left_queue_total", left + 1)
        server.wait_metric("fsgen_queue_depth", 0)
        assert server.metric("fsgen_running") == 1
        # A leaves mid-stream: its generation is cancelled and the models are free again.
    server.wait_metric("fsgen_generations_total", cancelled + 1, finish="cancelled")
    server.wait_metric("fsgen_running", 0)
    assert server.metric("fsgen_generations_total", finish="cancelled") == cancelled + 1  # B never ran
    # The next request starts at once: a short one answers although A had thousands of tokens left.
    started = time.monotonic()
    r = httpx.post(url + "/v1/completions", json={"prompt": "hi", "max_tokens": 4, "temperature": 0},
                   timeout=REQUEST_TIMEOUT)
    assert r.status_code == 200 and time.monotonic() - started < 20


def test_non_streaming_client_that_leaves_stops_its_generation(tiny_server):
    cancelled = tiny_server.metric("fsgen_generations_total", finish="cancelled")
    sock = start_raw(tiny_server.url, dict(LONG, stream=False))
    tiny_server.wait_metric("fsgen_running", 1)
    sock.close()
    tiny_server.wait_metric("fsgen_generations_total", cancelled + 1, finish="cancelled")
    tiny_server.wait_metric("fsgen_running", 0)


def test_full_queue_is_503_with_retry_after(tiny_small, tiny_large):
    with Server("--small", tiny_small, "--large", tiny_large, "--threads", 1, "--n-ctx", 8192,
                "--max-queue", 1) as server:
        url = server.url
        running = start_raw(url, dict(LONG, stream=False))
        server.wait_metric("fsgen_running", 1)
        waiting = start_raw(url, dict(LONG, stream=False))
        server.wait_metric("fsgen_queue_depth", 1)
        t0 = time.monotonic()
        r = httpx.post(url + "/v1/completions", json={"prompt": "hi", "max_tokens": 2}, timeout=REQUEST_TIMEOUT)
        health = httpx.get(url + "/health", timeout=10)
        elapsed = time.monotonic() - t0
        error = assert_openai_error(r, 503, "queue is full")
        assert error["code"] == "queue_full" and int(r.headers["retry-after"]) > 0
        assert health.status_code == 200
        assert elapsed < 5, "a refused request and /health answer while the generation runs"
        waiting.close()
        running.close()
        server.wait_metric("fsgen_running", 0)


def test_sigint_cancels_running_generations_and_exits_cleanly(tiny_small, tiny_large):
    server = Server("--small", tiny_small, "--large", tiny_large, "--threads", 1, "--n-ctx", 8192)
    try:
        got = {}

        def client():
            with httpx.stream("POST", server.url + "/v1/completions", json=dict(LONG, stream=True),
                              timeout=REQUEST_TIMEOUT) as r:
                got["events"] = [line for line in r.iter_lines() if line.startswith("data: ")]

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        server.wait_metric("fsgen_running", 1)
        time.sleep(0.3)
        t0 = time.monotonic()
        rc = server.stop(timeout=30)
        assert rc in (0, 130), (rc, "".join(server.stderr))
        assert time.monotonic() - t0 < 15, "the running generation should be cancelled, not waited for"
        assert "Traceback" not in "".join(server.stderr), "".join(server.stderr)
        thread.join(REQUEST_TIMEOUT)
        # The stream ends with an error event, as OpenAI's and llama-server's do, not with a finish
        # that would pass the cut text off as the whole answer; then no [DONE].
        assert "data: [DONE]" not in got["events"]
        last = json.loads(got["events"][-1][len("data: "):])
        assert last["error"]["code"] == "cancelled" and last["error"]["type"] == "server_error", last
        assert all('"finish_reason":"stop"' not in e for e in got["events"]), got["events"][-3:]
    finally:
        server.kill()


@pytest.mark.slow
def test_smollm2(smollm2):
    """Once on a real model: chat through the openai client equals the Python API's greedy answer."""
    import fsgen
    openai = require("openai", SERVE_EXTRAS)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    with fsgen.Model(smollm2, n_ctx=512, n_threads=1) as m:
        expected = m.generate(messages=messages, max_tokens=24)
    with Server("--model", smollm2, "--threads", 1, "--n-ctx", 512) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", timeout=REQUEST_TIMEOUT, max_retries=0)
        r = client.chat.completions.create(model="smollm2", messages=messages, max_tokens=24, temperature=0)
        assert r.choices[0].message.content == expected.text
        assert r.model_extra["timings"]["method"] == "model"
        with pytest.raises(openai.BadRequestError, match="needs a pair"):
            client.chat.completions.create(model="smollm2", messages=messages, extra_body={"method": "fs"})
        streamed = client.chat.completions.create(model="smollm2", messages=messages, max_tokens=24, temperature=0,
                                                  stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == expected.text
