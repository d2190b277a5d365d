"""Running `fsgen serve` as a subprocess for the server tests: start it on a free port of
127.0.0.1, wait until /health says ok, stop it with SIGINT; small HTTP helpers."""
from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Optional

import pytest

from helpers import require
from processes import child_env

START_TIMEOUT = 90.0
REQUEST_TIMEOUT = 60.0
SERVE_EXTRAS = "pip install '.[serve,test]'"  # what the server tests need


class Server:
    """`python -m fsgen.cli serve ARGS --port 0`; .url is the printed address."""

    def __init__(self, *args, env: Optional[dict] = None):
        require("uvicorn", SERVE_EXTRAS)
        self.args = ["serve", *map(str, args), "--host", "127.0.0.1", "--port", "0", "--log-level", "warning"]
        environment = child_env(PYTHONUNBUFFERED="1", **(env or {}))
        self.proc = subprocess.Popen([sys.executable, "-m", "fsgen.cli", *self.args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=environment)
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr, False), daemon=True).start()
        self.url = self._wait_url()
        self.wait_ready()

    def _read(self, pipe, into: list, forward: bool) -> None:
        for line in pipe:
            into.append(line)
            if forward:
                self.lines.put(line)

    def _wait_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if "listening on " in line:
                return line.split("listening on ", 1)[1].split()[0].rstrip("/")
        self.kill()
        raise AssertionError(f"fsgen serve did not start: rc={self.proc.poll()} stdout={''.join(self.stdout)} "
                             f"stderr={''.join(self.stderr)}")

    def wait_ready(self) -> None:
        import httpx
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            r = httpx.get(self.url + "/health", timeout=5)
            if r.status_code == 200:
                return
            assert r.status_code == 503 and r.json()["status"] == "loading", r.text
            time.sleep(0.05)
        raise AssertionError("fsgen serve never became ready")

    def metric(self, name: str, **labels) -> float:
        """A sample's value from /metrics (0 when absent)."""
        import httpx
        text = httpx.get(self.url + "/metrics", timeout=10).text
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        for line in text.splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    def wait_metric(self, name: str, value: float, timeout: float = 30.0, **labels) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.metric(name, **labels)
            if got == value:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{name}{labels} stayed {self.metric(name, **labels)}, expected {value}")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("fsgen serve did not stop on SIGINT")
        time.sleep(0.1)  # the reader threads drain the pipes
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def sse_events(response) -> list:
    """The JSON objects of an SSE response (httpx), without [DONE]; asserts it ends with [DONE]."""
    events, done = [], False
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[6:]
            if data == "[DONE]":
                done = True
            else:
                events.append(json.loads(data))
    assert done, "the stream did not end with data: [DONE]"
    return events


def pieces(events: list) -> list:
    """(text, fsgen_source) of each chat or completion chunk that carries text."""
    out = []
    for e in events:
        for choice in e.get("choices", []):
            delta = choice.get("delta", choice)
            text = delta.get("content", delta.get("text"))
            if text and "fsgen_source" in delta:
                out.append((text, delta["fsgen_source"]))
    return out


def assert_openai_error(response, status: int, *words: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    for word in words:
        assert word in error["message"], (word, error["message"])
    assert "Traceback" not in response.text
    return error


@pytest.fixture
def openai_module():
    return require("openai", SERVE_EXTRAS)
