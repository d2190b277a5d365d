"""The server's line of requests (fsgen.server.scheduler): first come first served, a bound on the
waiting, waiters that leave, shutdown. Pure asyncio, no models; and the app factory in-process."""
from __future__ import annotations

import asyncio

import pytest

from helpers import require
from serve_process import SERVE_EXTRAS


async def settle():
    for _ in range(5):  # let the tasks just created run up to their first wait
        await asyncio.sleep(0)


def scheduler_module():
    require("starlette", SERVE_EXTRAS)
    from fsgen.server import scheduler
    return scheduler


def test_first_come_first_served_and_bounded():
    s = scheduler_module()

    async def main():
        line = s.Scheduler(max_queue=2)
        order = []
        await line.acquire()  # runs at once
        assert line.busy and line.waiting == 0

        async def wait(name):
            await line.acquire()
            order.append(name)

        a = asyncio.ensure_future(wait("a"))
        await settle()
        b = asyncio.ensure_future(wait("b"))
        await settle()
        assert line.waiting == 2
        with pytest.raises(s.QueueFull):
            await line.acquire()
        line.release()
        await a
        line.release()
        await b
        assert order == ["a", "b"]
        line.release()
        assert not line.busy

    asyncio.run(main())


def test_a_waiter_that_leaves_frees_its_place():
    s = scheduler_module()

    async def main():
        line = s.Scheduler(max_queue=1)
        await line.acquire()
        leaving = asyncio.Event()
        waiter = asyncio.ensure_future(s.acquire_or_cancel(line, leaving))
        await settle()
        assert line.waiting == 1
        leaving.set()
        assert await waiter is None
        assert line.waiting == 0
        nxt = asyncio.ensure_future(line.acquire())  # the place is free again
        await settle()
        line.release()
        await nxt
        assert line.busy
        # Granted just as it was cancelled: the turn passes on instead of being lost.
        late = asyncio.ensure_future(line.acquire())
        await settle()
        line.release()
        late.cancel()
        with pytest.raises(asyncio.CancelledError):
            await late
        assert not line.busy and line.waiting == 0

    asyncio.run(main())


def test_close_fails_the_waiters():
    s = scheduler_module()

    async def main():
        line = s.Scheduler(max_queue=4)
        await line.acquire()
        waiter = asyncio.ensure_future(line.acquire())
        await settle()
        line.close()
        with pytest.raises(s.ShuttingDown):
            await waiter
        with pytest.raises(s.ShuttingDown):
            await line.acquire()

    asyncio.run(main())


def test_create_app_serves_a_loaded_pair_in_process(tiny_small, tiny_large):
    """The ASGI factory with an already loaded Pair (embedding), through Starlette's test client."""
    require("starlette", SERVE_EXTRAS)
    import fsgen
    from fsgen.server import Defaults, create_app
    from starlette.testclient import TestClient
    from helpers import TINY

    with fsgen.Pair(tiny_small, tiny_large, **TINY) as pair:
        expected = pair.generate("hello world", method="fs", guard=False, max_tokens=12).text
        app = create_app(pair, defaults=Defaults(method="fs", temperature=0.0), name="embedded")
        with TestClient(app) as client:
            assert client.get("/health").json() == {"status": "ok"}
            r = client.post("/v1/completions", json={"prompt": "hello world", "max_tokens": 12, "guard": False})
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["text"] == expected and r.json()["model"] == "embedded"
            assert "fsgen" in client.get("/").text
        assert not pair.large.closed  # the caller's pair stays the caller's


def test_the_server_calibrates_before_it_is_ready_and_never_during_requests(tiny_small, tiny_large, tmp_path,
                                                                             monkeypatch):
    """With calibration on, /health says 503 "loading" (and why) until the verify cost curve is
    measured, and requests that draft or guard (speculative, fs) then measure nothing."""
    require("starlette", SERVE_EXTRAS)
    import threading
    import time

    import fsgen
    from fsgen import calibration
    from fsgen.server import create_app
    from starlette.testclient import TestClient
    from helpers import TINY

    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path))
    measuring, release = threading.Event(), threading.Event()
    measure = calibration.Calibrator._measure

    def slow_measure(self, core):
        measuring.set()
        release.wait(30)
        return measure(self, core)

    monkeypatch.setattr(calibration.Calibrator, "_measure", slow_measure)
    with fsgen.Pair(tiny_small, tiny_large, calibrate=True, **TINY) as pair:
        with TestClient(create_app(pair)) as client:
            assert measuring.wait(30)
            health = client.get("/health")
            assert health.status_code == 503
            assert health.json() == {"status": "loading", "reason": "measuring the verify cost curve"}
            release.set()
            deadline = time.monotonic() + 30
            while client.get("/health").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert client.get("/health").json() == {"status": "ok"}
            assert pair._calibrator.measurements == 1
            for method in ("speculative", "fs", "large"):
                r = client.post("/v1/completions", json={"prompt": "hello", "max_tokens": 4, "method": method})
                assert r.status_code == 200, r.text
            assert pair._calibrator.measurements == 1
            # Costs drift far from the calibration (here: a calibration a thousand times too
            # cheap): a library call would measure again before its next call; the server does not.
            pair._core.set_calibration([-1.0] + [1e-8] * 16, 1e-8)
            for _ in range(40):
                r = client.post("/v1/completions", json={"prompt": "hello world", "max_tokens": 16,
                                                         "method": "speculative", "draft_max": 2})
                assert r.status_code == 200, r.text
                if pair.planner["drifted"]:
                    break
            assert pair.planner["drifted"], "the test drifts the costs"
            r = client.post("/v1/completions", json={"prompt": "hello", "max_tokens": 4, "method": "speculative"})
            assert r.status_code == 200, r.text
            assert pair._calibrator.measurements == 1
