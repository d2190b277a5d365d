"""A model on llama.cpp's RPC backend (`fsgen rpc-server`), System 2 remote, and its faults.

Loopback only: each test runs its own server on a free port, every subprocess has a timeout.
The remote model lives in a helper process fsgen owns, so a dead server or a stalled link gives
a typed error in this process (ggml-rpc itself would abort it).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import fsgen
from delay_proxy import DelayProxy
from helpers import TINY, require
from processes import child_env, free_port
from rpc_server_process import RpcServer, helper_children

PROMPT = "hello world"
_env = child_env


@pytest.fixture
def server():
    s = RpcServer()
    yield s
    s.kill()


def test_build_has_rpc():
    info = fsgen.build_info()
    assert info["rpc"] is True and "RPC" in info["backends"]


def test_rpc_server_needs_allow_remote_for_a_network_address():
    done = subprocess.run([sys.executable, "-m", "fsgen.cli", "rpc-server", "--host", "0.0.0.0", "--port",
                           str(free_port())], capture_output=True, text=True, timeout=60, env=_env(),
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert "--allow-remote" in done.stderr and "authentication" in done.stderr
    # The executable itself refuses too (a C++ user may run it directly).
    done = subprocess.run([fsgen._core.rpc_helper_path(), "serve", "--host", "0.0.0.0", "--port", "1"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "--allow-remote" in done.stderr
    help_text = subprocess.run([sys.executable, "-m", "fsgen.cli", "rpc-server", "--help"], capture_output=True,
                               text=True, timeout=60, env=_env()).stdout
    assert "one client at a time" in " ".join(help_text.split()).lower()


def test_rpc_server_warns_that_the_protocol_is_unauthenticated(server):
    server.kill()
    assert "NO AUTHENTICATION" in server.stderr()


def test_ctrl_c_ends_the_rpc_server():
    server = RpcServer()
    try:
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=10) != 0
    finally:
        server.kill()


def test_offloaded_model_gives_the_local_tokens(server, tiny_large):
    with fsgen.Model(tiny_large, **TINY) as local:
        expected = local.generate(PROMPT, max_tokens=24)
        local_info = local.info
    with fsgen.Model(tiny_large, rpc=[server.endpoint], **TINY) as remote:
        assert remote.info["n_params"] == local_info["n_params"]
        got = remote.generate(PROMPT, max_tokens=24)
        assert got.tokens == expected.tokens and got.text == expected.text
        stats = remote.rpc_stats()
        assert stats["endpoints"] == [server.endpoint] and not stats["lost"]
        assert stats["evals"] >= 24 and 0 < stats["overhead_per_eval"] < stats["round_trip_seconds"]
        again = remote.generate(PROMPT + " again", max_tokens=8)  # the remote cache rolls back
    with fsgen.Model(tiny_large, **TINY) as local:
        assert again.tokens == local.generate(PROMPT + " again", max_tokens=8).tokens
    assert helper_children() == []  # closed: the helper is gone


@pytest.mark.parametrize("prompt_cache_mib", [256, 0])
def test_remote_model_keeps_its_prompt_cache_size(server, tiny_large, prompt_cache_mib):
    """The helper's contexts get the model's prompt_cache_mib: with 0 an earlier prompt is read
    again, with the default it is restored."""
    long_a = "Once upon a time a small robot counted the waves of the sea. " * 6
    long_b = "def add(a, b):\n    return a + b\n\n" * 8
    with fsgen.Model(tiny_large, rpc=[server.endpoint], prompt_cache_mib=prompt_cache_mib, **TINY) as remote:
        first = remote.generate(long_a, max_tokens=8)
        assert first.stats["n_prompt_tokens"] > 100, "the prompt must outgrow a speculative rollback"
        remote.generate(long_b, max_tokens=8)
        again = remote.generate(long_a, max_tokens=8)
    assert again.tokens == first.tokens
    assert again.stats["n_prompt_cached"] == (again.stats["n_prompt_tokens"] - 1 if prompt_cache_mib else 0)


# fs without its guard: the guard hands over by measured speed, which a remote System 2 changes.
@pytest.mark.parametrize("method,params", [("fs", {"guard": False}), ("speculative", {}),
                                           ("speculative", {"draft_max": 4})])
def test_pair_with_remote_system2_matches_all_local(server, tiny_mixed, tiny_large, method, params):
    # tiny_mixed: System 1 is unsure on about half the tokens, so fs consults System 2 often.
    with fsgen.Pair(tiny_mixed, tiny_large, **TINY) as pair:
        expected = pair.generate(PROMPT, method=method, max_tokens=32, **params)
    with fsgen.Pair(tiny_mixed, tiny_large, large_rpc=[server.endpoint], **TINY) as pair:
        got = pair.generate(PROMPT, method=method, max_tokens=32, **params)
        assert got.tokens == expected.tokens
        assert got.stats["system2_calls"] > 0
        if method == "fs" and not params.get("guard", True):  # the same gated calls (speculative's
            # rounds, and the guard's hand-overs, follow measured costs)
            assert got.stats["system2_calls"] == expected.stats["system2_calls"]
        assert pair.large.rpc_stats()["evals"] >= got.stats["system2_calls"]
        assert pair.large_lost is False


def test_refused_connection_names_the_endpoint(tiny_large):
    endpoint = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(fsgen.ModelLoadError, match=endpoint.replace(".", r"\.")) as info:
        fsgen.Model(tiny_large, rpc=[endpoint], **TINY)
    assert "refused" in str(info.value).lower()
    assert helper_children() == []


def test_silent_server_fails_the_load_by_the_deadline(tiny_large):
    import socket
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        endpoint = "127.0.0.1:%d" % listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(fsgen.ModelLoadError, match="no answer to the RPC hello within 1 s"):
            fsgen.Model(tiny_large, rpc=[endpoint], rpc_timeout=1, **TINY)
        assert time.monotonic() - started < 5
    assert helper_children() == []


def test_bad_rpc_arguments(tiny_small, tiny_large):
    with pytest.raises(fsgen.InvalidArgumentError):
        fsgen.Model(tiny_large, rpc=["no-port"], **TINY)
    with pytest.raises(fsgen.InvalidArgumentError):
        fsgen.Model(tiny_large, rpc=["127.0.0.1:1"], rpc_timeout=0, **TINY)
    with fsgen.Model(tiny_large, **TINY) as large:
        assert large.rpc_stats() is None
        with pytest.raises(fsgen.InvalidArgumentError, match="large_rpc"):
            fsgen.Pair(tiny_small, large, large_rpc=["127.0.0.1:1"], **TINY)


def _generate_until_error(pair, fault, timeout):
    """Streams method="large" (a remote call per token), runs fault() after a few tokens, and
    returns the error and how long after the fault it came."""
    stream = pair.stream(PROMPT, method="large", max_tokens=200)
    started = None
    with pytest.raises(fsgen.GenerationError) as info:
        for i, _ in enumerate(stream):
            if i == 3:
                fault()
                started = time.monotonic()
    assert started is not None, "the generation ended before the fault"
    return info.value, time.monotonic() - started


def test_server_killed_mid_generation(tiny_small, tiny_large):
    server = RpcServer()
    try:
        with fsgen.Pair(tiny_small, tiny_large, large_rpc=[server.endpoint], rpc_timeout=10, **TINY) as pair:
            error, seconds = _generate_until_error(pair, server.kill, 10)
            assert seconds < 8, f"the error took {seconds:.1f} s"
            assert server.endpoint in str(error) and "lost" in str(error)
            assert pair.large_lost and helper_children() == []
            # System 1 keeps working in this process; System 2 says it is lost.
            small = pair.generate(PROMPT, method="small", max_tokens=8)
            assert small.stats["n_tokens"] == 8
            with pytest.raises(fsgen.GenerationError, match="lost"):
                pair.generate(PROMPT, method="fs", router="always", max_tokens=4)
            with pytest.raises(fsgen.ModelLoadError, match=server.endpoint.replace(".", r"\.")):
                pair.reload_large()  # the server is still down
            # A restarted server has lost the weights: reload_large() sends them again.
            server = RpcServer(server.port)
            pair.reload_large()
            assert not pair.large_lost
            with fsgen.Pair(tiny_small, tiny_large, **TINY) as local:
                expected = local.generate(PROMPT, method="large", max_tokens=12).tokens
            assert pair.generate(PROMPT, method="large", max_tokens=12).tokens == expected
    finally:
        server.kill()


def test_stalled_link_fails_by_the_deadline(server, tiny_small, tiny_large):
    with DelayProxy(server.port) as proxy:
        with fsgen.Pair(tiny_small, tiny_large, large_rpc=[proxy.endpoint], rpc_timeout=1.5, **TINY) as pair:
            error, seconds = _generate_until_error(pair, proxy.hold, 1.5)
            assert 1.0 < seconds < 6, f"the error came after {seconds:.1f} s"
            assert "rpc_timeout" in str(error)
            assert pair.large_lost
            assert pair.generate(PROMPT, method="small", max_tokens=4).stats["n_tokens"] == 4
            # The helper waits another rpc_timeout for the server; then it goes, and the reload
            # fails while the link is still stalled.
            with pytest.raises(fsgen.ModelLoadError, match=proxy.endpoint.replace(".", r"\.")):
                pair.reload_large()
            assert pair.large_lost and helper_children() == []


def test_calls_survive_a_slow_link(server, tiny_mixed, tiny_large):
    with DelayProxy(server.port, delay_ms=5) as proxy:
        with fsgen.Pair(tiny_mixed, tiny_large, **TINY) as pair:
            expected = pair.generate(PROMPT, method="fs", guard=False, max_tokens=16)
        with fsgen.Pair(tiny_mixed, tiny_large, large_rpc=[proxy.endpoint], **TINY) as pair:
            got = pair.generate(PROMPT, method="fs", guard=False, max_tokens=16)
            assert got.tokens == expected.tokens and got.stats["system2_calls"] > 0
            assert sum(proxy.bytes()) > 0


def test_cli_generate_with_remote_system2(server, tiny_mixed, tiny_large):
    args = ["generate", "--small", tiny_mixed, "--large", tiny_large, "--method", "fs", "--no-guard", "--raw", PROMPT,
            "--max-tokens", "12", "--threads", "1", "--n-ctx", "256"]
    run = lambda *extra: subprocess.run([sys.executable, "-m", "fsgen.cli", *map(str, args), *extra],
                                        capture_output=True, text=True, timeout=120, env=_env(),
                                        stdin=subprocess.DEVNULL)
    local = run()
    remote = run("--large-rpc", server.endpoint)
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout


def test_drafts_grow_with_the_link_delay(server, tiny_small, tiny_large, tmp_path, monkeypatch):
    """Latency-aware drafting: System 2's cost curve is measured through the link (calibrated per
    endpoint), so the round trip counts as a fixed cost per call, and the planner drafts longer
    (and System 1 drafts on through less confident tokens) at 20 ms per direction than at 0 ms.
    Measured as the rows per remote call of a second generation (the first one calibrates)."""
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path))
    rows_per_call = {}
    for delay in (0, 20):
        with DelayProxy(server.port, delay_ms=delay) as proxy:
            with fsgen.Pair(tiny_small, tiny_large, large_rpc=[proxy.endpoint], calibrate=True, **TINY) as pair:
                run = lambda: pair.generate(PROMPT, method="speculative", draft="model", max_tokens=48)
                run()
                before = pair.large.rpc_stats()
                drafted = run().stats["drafted"]
                assert delay == 0 or drafted > 0, "behind a round trip System 1's drafts pay"
                after = pair.large.rpc_stats()
                rows_per_call[delay] = (after["rows"] - before["rows"]) / (after["evals"] - before["evals"])
    assert len(list(tmp_path.glob("calibration/*.json"))) == 2, "one cost curve per endpoint"
    assert rows_per_call[20] > 1.5 * rows_per_call[0], rows_per_call


def test_serve_with_remote_system2_recovers_from_a_restarted_server(tiny_small, tiny_large):
    """`fsgen serve --large-rpc`: System 2 on the rpc-server. When that server dies, a request
    that needs System 2 gets a 503 to retry (System 1 alone still serves); once it is back, the
    next such request loads System 2 again, without restarting fsgen serve."""
    from serve_process import REQUEST_TIMEOUT, SERVE_EXTRAS, Server
    httpx = require("httpx", SERVE_EXTRAS)
    body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 8, "temperature": 0}
    with fsgen.Pair(tiny_small, tiny_large, **TINY) as local:
        expected = local.generate(messages=body["messages"], method="large", max_tokens=8).text
    rpc = RpcServer()
    try:
        with Server("--small", tiny_small, "--large", tiny_large, "--large-rpc", rpc.endpoint, "--rpc-timeout", 10,
                    "--threads", 1, "--n-ctx", 256) as server:
            post = lambda **extra: httpx.post(server.url + "/v1/chat/completions", json=dict(body, **extra),
                                              timeout=REQUEST_TIMEOUT)
            r = post(method="large")
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == expected
            rpc.kill()
            r = post(method="large")
            assert r.status_code == 503 and r.headers["retry-after"], r.text
            assert r.json()["error"]["code"] == "rpc_unavailable" and rpc.endpoint in r.json()["error"]["message"]
            r = post(method="small")  # System 1 is local
            assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 8, r.text
            r = post(method="large")  # still down: the reload fails the same way
            assert r.status_code == 503 and r.json()["error"]["code"] == "rpc_unavailable", r.text
            rpc = RpcServer(rpc.port)
            r = post(method="large")
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"] == expected
    finally:
        rpc.kill()


def test_serve_one_model_on_rpc_recovers_from_a_restarted_server(tiny_large):
    from serve_process import REQUEST_TIMEOUT, SERVE_EXTRAS, Server
    httpx = require("httpx", SERVE_EXTRAS)
    body = {"prompt": PROMPT, "max_tokens": 8, "temperature": 0}
    with fsgen.Model(tiny_large, **TINY) as local:
        expected = local.generate(PROMPT, max_tokens=8).text
    rpc = RpcServer()
    try:
        with Server("--model", tiny_large, "--rpc", rpc.endpoint, "--rpc-timeout", 10, "--threads", 1,
                    "--n-ctx", 256) as server:
            post = lambda: httpx.post(server.url + "/v1/completions", json=body, timeout=REQUEST_TIMEOUT)
            assert post().json()["choices"][0]["text"] == expected
            rpc.kill()
            r = post()
            assert r.status_code == 503 and r.json()["error"]["code"] == "rpc_unavailable", r.text
            rpc = RpcServer(rpc.port)
            r = post()
            assert r.status_code == 200 and r.json()["choices"][0]["text"] == expected, r.text
    finally:
        rpc.kill()


def test_rpc_flags_of_serve_and_calibrate(tiny_small, tiny_large):
    for command in ("serve", "calibrate"):
        done = subprocess.run([sys.executable, "-m", "fsgen.cli", command, "--model", str(tiny_large), "--large-rpc",
                               "127.0.0.1:1"], capture_output=True, text=True, timeout=60, env=_env(),
                              stdin=subprocess.DEVNULL)
        assert done.returncode != 0 and "--large-rpc needs a pair" in done.stderr, done.stderr
        done = subprocess.run([sys.executable, "-m", "fsgen.cli", command, "--small", str(tiny_small), "--large",
                               str(tiny_large), "--rpc", "127.0.0.1:1"], capture_output=True, text=True, timeout=60,
                              env=_env(), stdin=subprocess.DEVNULL)
        assert done.returncode != 0 and "--rpc is for --model" in done.stderr, done.stderr


def test_calibrate_a_remote_system2(server, tiny_small, tiny_large, tmp_path):
    done = subprocess.run([sys.executable, "-m", "fsgen.cli", "calibrate", "--small", str(tiny_small), "--large",
                           str(tiny_large), "--large-rpc", server.endpoint, "--threads", "1", "--n-ctx", "256"],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env=dict(_env(), XDG_CACHE_HOME=str(tmp_path), FSGEN_CACHE=str(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert f"on {server.endpoint} (RPC)" in done.stdout and "rows" in done.stdout


def test_pair_loaded_on_a_thread_that_ends_keeps_its_helper(server, tiny_small, tiny_large):
    """fsgen serve loads its models on a thread that then ends: the helper must not go with it
    (PR_SET_PDEATHSIG would have killed it at that thread's end)."""
    import threading
    loaded = {}
    loader = threading.Thread(target=lambda: loaded.update(
        pair=fsgen.Pair(tiny_small, tiny_large, large_rpc=[server.endpoint], rpc_timeout=10, **TINY)))
    loader.start()
    loader.join()
    time.sleep(0.5)  # the watch of the parent process ticks every 0.2 s
    with loaded["pair"] as pair, fsgen.Pair(tiny_small, tiny_large, **TINY) as local:
        expected = local.generate(PROMPT, method="large", max_tokens=8).tokens
        assert pair.generate(PROMPT, method="large", max_tokens=8).tokens == expected
        assert not pair.large_lost


ORPHAN = r"""
import os, sys, time, fsgen
m = fsgen.Model(sys.argv[1], rpc=[sys.argv[2]], n_ctx=256, n_threads=1)
helpers = [p for p in os.listdir("/proc") if p.isdigit() and os.path.exists(f"/proc/{p}/stat")
           and open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == str(os.getpid())]
print(" ".join(helpers), flush=True)
time.sleep(600)
"""


def test_helper_dies_with_its_process(server, tiny_large):
    child = subprocess.Popen([sys.executable, "-c", ORPHAN, str(tiny_large), server.endpoint], stdout=subprocess.PIPE,
                             text=True, env=_env(), stdin=subprocess.DEVNULL)
    try:
        helpers = [int(p) for p in child.stdout.readline().split()]
        assert helpers, "the child started no helper"
    finally:
        child.kill()
        child.wait(timeout=30)
    deadline = time.monotonic() + 5
    alive = lambda pid: os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    while any(alive(p) for p in helpers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in helpers), "the helper outlived its process"
