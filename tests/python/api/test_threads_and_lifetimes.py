"""Threads, cancellation, Ctrl-C, abandoned streams and object lifetimes.

Generation runs on a C++ worker thread per call; Python waits for it in short slices with the
GIL released. A Model or Pair serialises its own calls (one KV cache per context); separate
objects run in parallel. cancel() reaches a decode in progress through llama.cpp's abort
callback. Everything here uses one thread per context and the tiny bed.
"""
from __future__ import annotations

import gc
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import fsgen

from helpers import REPO
from processes import child_env

THREADS = 1
CTX = dict(n_ctx=256, n_threads=THREADS)
# A generation that runs for a minute or more if nothing stops it (16k tokens, attention over
# a 16k context on the tiny models).
LONG_CTX = dict(n_ctx=16384, n_threads=THREADS)
LONG = dict(max_tokens=16000)
PROMPTS = ["hello world", "the", "Once upon a time", "and of to the hello\n"]
# Every method of the core's table but proxy (no base model here).
METHODS = [m for m, spec in fsgen.methods().items() if not spec["needs_small_base"]]
PROMPT_CANCEL_S = 2.0  # "promptly": generous for a loaded 2-core machine; typically ~0.01 s


@pytest.fixture(scope="module")
def pair(tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, small_base=tiny_small, **CTX) as p:
        yield p


@pytest.fixture(scope="module")
def long_pair(tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, **LONG_CTX) as p:
        yield p


def sequential(pair, calls):
    return [pair.generate(prompt, **kwargs).tokens for prompt, kwargs in calls]


def run_threads(targets):
    """Runs each target in its own thread, started together; re-raises the first error."""
    errors = []
    barrier = threading.Barrier(len(targets))

    def wrap(target):
        def run():
            try:
                barrier.wait()
                target()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


# ---- threads ----

def test_separate_pairs_in_threads_run_in_parallel(tiny_small, tiny_large):
    """Each thread its own pair: the same outputs as one after another, and the calls overlap in
    time. Were the GIL held while the core works, each thread could only start its call after the
    previous one ended, and the spans would not overlap."""
    calls = [(PROMPTS[i], dict(method=m, max_tokens=700))
             for i, m in enumerate(["speculative", "fs", "small"])]
    pairs = [fsgen.Pair(tiny_small, tiny_large, n_ctx=1024, n_threads=THREADS) for _ in calls]
    try:
        expected = [p.generate(prompt, **kw).tokens for p, (prompt, kw) in zip(pairs, calls)]
        spans, outputs = [None] * len(calls), [None] * len(calls)

        def worker(i):
            def run():
                start = time.monotonic()
                outputs[i] = pairs[i].generate(calls[i][0], **calls[i][1]).tokens
                spans[i] = (start, time.monotonic())
            return run

        # Meanwhile this thread keeps running Python code: the GIL is free.
        ticks = 0
        done = threading.Event()

        def count():
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                time.sleep(0.001)

        counter = threading.Thread(target=count)
        counter.start()
        run_threads([worker(i) for i in range(len(calls))])
        done.set()
        counter.join()
        assert outputs == expected
        assert ticks > 5
        # Every call started before any ended.
        assert max(s for s, _ in spans) < min(e for _, e in spans), spans
    finally:
        for p in pairs:
            p.close()


def test_concurrent_calls_on_one_pair_are_serialised(pair):
    """Many threads on the same pair: every output is what it would be alone (one KV cache, never
    interleaved)."""
    calls = [(PROMPTS[i % len(PROMPTS)], dict(method=METHODS[i % len(METHODS)], max_tokens=40)) for i in range(12)]
    expected = sequential(pair, calls)
    outputs = [None] * len(calls)

    def worker(i):
        def run():
            outputs[i] = pair.generate(calls[i][0], **calls[i][1]).tokens
        return run

    for _ in range(2):
        run_threads([worker(i) for i in range(len(calls))])
        assert outputs == expected


def test_concurrent_streams_on_one_pair(pair):
    """Two streams of one pair consumed alternately in one thread: the second waits for the
    first (no deadlock: the first keeps producing), and neither mixes into the other."""
    a = pair.stream("hello world", method="speculative", max_tokens=60)
    b = pair.stream("the", method="fs", guard=False, max_tokens=60)  # the guard follows measured speed
    texts = {"a": "", "b": ""}
    iterators = {"a": iter(a), "b": iter(b)}
    while iterators:
        for name in list(iterators):
            try:
                texts[name] += next(iterators[name]).text
            except StopIteration:
                del iterators[name]
    assert texts["a"] == a.result.text == pair.generate("hello world", method="speculative", max_tokens=60).text
    assert texts["b"] == b.result.text == pair.generate("the", method="fs", guard=False, max_tokens=60).text


def test_model_shared_by_a_pair_and_used_alone(tiny_small, tiny_large):
    """A Model used directly and inside a Pair at the same time: separate contexts on shared
    weights, so the calls may run together and each gives its own output."""
    with fsgen.Model(tiny_small, **CTX) as small, fsgen.Model(tiny_large, **CTX) as large:
        pair = fsgen.Pair(small, large, **CTX)
        alone = small.generate("hello world", max_tokens=80).tokens
        together = pair.generate("the", method="speculative", max_tokens=80).tokens
        outputs = {}

        def use_model():
            for _ in range(3):
                outputs["model"] = small.generate("hello world", max_tokens=80).tokens

        def use_pair():
            for _ in range(3):
                outputs["pair"] = pair.generate("the", method="speculative", max_tokens=80).tokens

        run_threads([use_model, use_pair, use_model])
        assert outputs == {"model": alone, "pair": together}
        pair.close()


def test_concurrent_calls_on_one_model(tiny_small):
    with fsgen.Model(tiny_small, **CTX) as model:
        calls = [(p, dict(max_tokens=50)) for p in PROMPTS] * 2
        expected = sequential(model, calls)
        outputs = [None] * len(calls)

        def worker(i):
            def run():
                outputs[i] = model.generate(calls[i][0], **calls[i][1]).tokens
            return run

        run_threads([worker(i) for i in range(len(calls))])
        assert outputs == expected


# ---- cancel() from another thread ----

def cancel_soon(action, delay=0.3):
    """Calls action() after delay seconds in a thread; returns (thread, {"at": monotonic time})."""
    when = {}

    def run():
        time.sleep(delay)
        when["at"] = time.monotonic()
        action()

    t = threading.Thread(target=run)
    t.start()
    return t, when


@pytest.mark.parametrize("method", METHODS)
def test_cancel_stops_a_long_generation_promptly(long_pair, method):
    thread, when = cancel_soon(long_pair.cancel)
    result = long_pair.generate("hello world", method=method, **LONG)
    returned = time.monotonic()
    thread.join()
    assert result.finish_reason == "cancelled"
    assert 0 < len(result.tokens) < LONG["max_tokens"]
    assert returned - when["at"] < PROMPT_CANCEL_S
    assert result.stats["n_tokens"] == len(result.tokens)


def test_pair_is_reusable_after_cancel(long_pair, tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, **CTX) as fresh:
        expected = {m: fresh.generate("the", method=m, max_tokens=40).tokens for m in METHODS}
    for method in ("speculative", "fs"):
        thread, _ = cancel_soon(long_pair.cancel, 0.2)
        assert long_pair.generate("hello world", method=method, **LONG).finish_reason == "cancelled"
        thread.join()
        for m in METHODS:
            assert long_pair.generate("the", method=m, max_tokens=40).tokens == expected[m], m


def test_cancel_during_a_long_prompt_decode(tiny_small, tiny_large):
    """cancel() while llama.cpp decodes a 12k-token prompt (several seconds): the abort callback
    stops the decode itself, the KV cache is rolled back, and the pair is fine afterwards."""
    with fsgen.Pair(tiny_small, tiny_large, n_ctx=16384, n_batch=64, n_threads=THREADS) as p:
        expected = p.generate("hello world", method="large", max_tokens=30).tokens
        thread, when = cancel_soon(p.cancel, 0.3)
        result = p.generate("x" * 12000, method="large", max_tokens=10)
        returned = time.monotonic()
        thread.join()
        assert result.finish_reason == "cancelled" and result.tokens == []
        assert returned - when["at"] < PROMPT_CANCEL_S
        assert p.generate("hello world", method="large", max_tokens=30).tokens == expected
        # The same long prompt again, to the end: nothing half-decoded is reused wrongly.
        short = "x" * 200
        assert p.generate(short, method="large", max_tokens=20).tokens == \
            fsgen.Pair(tiny_small, tiny_large, **CTX).generate(short, method="large", max_tokens=20).tokens


def test_model_cancel(tiny_small):
    with fsgen.Model(tiny_small, **LONG_CTX) as model:
        expected = model.generate("the", max_tokens=30).tokens
        thread, when = cancel_soon(model.cancel)
        result = model.generate("hello", **LONG)
        thread.join()
        assert result.finish_reason == "cancelled"
        assert time.monotonic() - when["at"] < PROMPT_CANCEL_S
        assert model.generate("the", max_tokens=30).tokens == expected


def test_stream_cancel_from_another_thread(long_pair):
    stream = long_pair.stream("hello world", method="speculative", **LONG)
    thread, when = cancel_soon(stream.cancel)
    text = "".join(chunk.text for chunk in stream)
    thread.join()
    assert stream.result.finish_reason == "cancelled"
    assert time.monotonic() - when["at"] < PROMPT_CANCEL_S
    assert text == stream.result.text


def test_cancelling_a_queued_call_stops_only_that_call(long_pair):
    """Two streams on one pair: the second waits for the first. Cancelling the waiting one ends
    it at once (without running it) and does not touch the running one."""
    first = long_pair.stream("hello world", method="small", **LONG)
    next(first)  # running
    second = long_pair.stream("the", method="small", **LONG)
    time.sleep(0.05)
    started = time.monotonic()
    second.cancel()
    assert list(second) == []
    assert time.monotonic() - started < PROMPT_CANCEL_S
    assert second.result.finish_reason == "cancelled" and second.result.tokens == []
    # The first one is still running: more text keeps coming until it is cancelled itself.
    for _ in range(50):
        next(first)
    assert first.result is None
    first.cancel()
    list(first)
    assert first.result.finish_reason == "cancelled"
    assert 50 < len(first.result.tokens) < LONG["max_tokens"]


def test_closing_a_queued_stream_returns_at_once(long_pair):
    first = long_pair.stream("hello world", method="small", max_tokens=1500)
    next(iter(first))
    second = long_pair.stream("the", method="small", **LONG)
    started = time.monotonic()
    second.close()
    assert time.monotonic() - started < PROMPT_CANCEL_S
    assert second.result.finish_reason == "cancelled"
    first.cancel()
    list(first)
    assert first.result.finish_reason == "cancelled"


def test_cancel_with_nothing_running_is_harmless(pair):
    expected = pair.generate("hello world", max_tokens=20).tokens
    pair.cancel()
    pair.small.cancel()
    # "Cancel whatever is running": nothing was, so the next call runs normally.
    assert pair.generate("hello world", max_tokens=20).tokens == expected


# ---- abandoned streams ----

@pytest.mark.parametrize("method", ["speculative", "fs", "contrastive"])
def test_abandoned_stream_frees_its_work(long_pair, method, tiny_small, tiny_large):
    with fsgen.Pair(tiny_small, tiny_large, **CTX) as fresh:
        expected = fresh.generate("the", method=method, max_tokens=40).tokens
    for _ in range(2):
        for i, chunk in enumerate(long_pair.stream("hello world", method=method, **LONG)):
            if i == 5:
                break  # the stream is dropped here: it is closed and its job cancelled
        started = time.monotonic()
        assert long_pair.generate("the", method=method, max_tokens=40).tokens == expected
        assert time.monotonic() - started < 5, "the abandoned stream kept the pair busy"


def test_stream_closed_explicitly_and_by_context_manager(long_pair):
    stream = long_pair.stream("hello world", method="speculative", **LONG)
    next(stream)
    stream.close()
    assert stream.result.finish_reason == "cancelled"
    assert list(stream) == []  # iterating a closed stream just ends
    stream.close()  # twice is fine
    with long_pair.stream("hello world", method="fs", **LONG) as stream:
        next(stream)
    assert stream.result.finish_reason == "cancelled"


def test_unconsumed_stream_dropped_without_iterating(long_pair):
    started = time.monotonic()
    for _ in range(5):
        long_pair.stream("hello world", method="speculative", **LONG)  # dropped at once
    gc.collect()
    assert long_pair.generate("the", method="small", max_tokens=10).finish_reason == "length"
    assert time.monotonic() - started < 10


# ---- Ctrl-C ----

CHILD = textwrap.dedent(r"""
    import sys, time, fsgen
    small, large, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "model":
        runner = fsgen.Model(small, n_ctx=16384, n_threads=1)
        call = dict()
    else:
        runner = fsgen.Pair(small, large, n_ctx=16384, n_threads=1)
        call = dict(method="speculative")
    expected = runner.generate("the", max_tokens=30, **call).tokens
    print("GENERATING", flush=True)
    started = time.monotonic()
    try:
        if mode == "stream":
            for chunk in runner.stream("hello world", max_tokens=16000, **call):
                pass
        else:
            runner.generate("hello world", max_tokens=16000, **call)
        print("FINISHED", flush=True)
    except KeyboardInterrupt:
        print("INTERRUPTED", time.monotonic() - started, flush=True)
        again = runner.generate("the", max_tokens=30, **call).tokens
        print("REUSABLE" if again == expected else f"DIFFERENT {again} {expected}", flush=True)
        if len(sys.argv) > 4:
            raise
""")


def interrupt_child(args, wait_for, delay: float = 0.5, timeout: float = 60.0):
    """Starts a child, waits for the line `wait_for` on its stdout (None: any first byte), sends
    SIGINT `delay` s later; returns (returncode, stdout, stderr, seconds from SIGINT to exit)."""
    # SIGINT's default action in the child: a shell's background job (`cmd &`) ignores SIGINT, and a
    # child that inherits that would never see the Ctrl-C these tests send.
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        seen = ""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            piece = proc.stdout.read(1) if wait_for is None else proc.stdout.readline()
            if not piece:
                break
            seen += piece
            if wait_for is None or wait_for in piece:
                break
        assert seen and (wait_for is None or wait_for in seen), \
            f"the child never printed {wait_for!r}: {seen!r} {proc.stderr.read()[-2000:]}"
        time.sleep(delay)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        return proc.returncode, seen + out, err, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("mode", ["pair", "stream", "model"])
def test_ctrl_c_interrupts_a_long_generation(tiny_small, tiny_large, mode):
    code, out, err, seconds = interrupt_child(
        [sys.executable, "-c", CHILD, str(tiny_small), str(tiny_large), mode], "GENERATING")
    assert code == 0, err[-2000:]
    assert "INTERRUPTED" in out and "FINISHED" not in out, out
    assert "REUSABLE" in out, out
    assert seconds < 5, f"took {seconds:.1f} s to stop after SIGINT"


def test_ctrl_c_uncaught_ends_the_process_with_keyboard_interrupt(tiny_small, tiny_large):
    code, out, err, seconds = interrupt_child(
        [sys.executable, "-c", CHILD, str(tiny_small), str(tiny_large), "pair", "reraise"], "GENERATING")
    assert "KeyboardInterrupt" in err, err[-2000:]
    assert code in (1, -signal.SIGINT, 128 + signal.SIGINT), code
    assert "Fatal" not in err and "terminate called" not in err, err[-2000:]
    assert seconds < 5


def test_ctrl_c_in_the_cli_exits_130(tiny_small, tiny_large):
    args = [sys.executable, "-m", "fsgen.cli", "generate", "--small", str(tiny_small), "--large", str(tiny_large),
            "--n-ctx", "16384", "--max-tokens", "16000", "--threads", "1", "--raw", "hello world"]
    code, out, err, seconds = interrupt_child(args, wait_for=None, delay=0.5)  # the first streamed text
    assert code == 130, (code, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    assert seconds < 5


# ---- lifetimes ----

def test_pair_outlives_the_models_passed_to_it(tiny_small, tiny_large):
    small, large = fsgen.Model(tiny_small, **CTX), fsgen.Model(tiny_large, **CTX)
    pair = fsgen.Pair(small, large, **CTX)
    expected = pair.generate("hello", method="speculative", max_tokens=20).tokens
    del small, large
    gc.collect()
    assert pair.generate("hello", method="speculative", max_tokens=20).tokens == expected
    pair.close()


def test_stream_outlives_its_pair(tiny_small, tiny_large):
    pair = fsgen.Pair(tiny_small, tiny_large, **CTX)
    expected = pair.generate("hello", method="fs", guard=False, max_tokens=30).text
    stream = pair.stream("hello", method="fs", guard=False, max_tokens=30)
    del pair
    gc.collect()
    assert "".join(c.text for c in stream) == expected


def test_closing_a_model_under_a_running_pair(tiny_small, tiny_large):
    """close() on the Models a Pair was built from, while the pair generates: the pair holds its
    own handles on the weights, so it goes on, and its outputs do not change. The weights are
    freed when the pair is closed too."""
    small, large = fsgen.Model(tiny_small, **LONG_CTX), fsgen.Model(tiny_large, **LONG_CTX)
    pair = fsgen.Pair(small, large, **LONG_CTX)
    expected = {m: pair.generate("the", method=m, max_tokens=20).tokens for m in METHODS}
    stream = pair.stream("hello world", method="speculative", max_tokens=600)
    next(stream)
    small.close()
    large.close()
    assert small.closed and large.closed
    with pytest.raises(fsgen.InvalidArgumentError, match="closed"):
        small.generate("the", max_tokens=4)
    list(stream)
    assert stream.result.finish_reason == "length"
    for method in METHODS:
        assert pair.generate("the", method=method, max_tokens=20).tokens == expected[method], method
    pair.close()
    with pytest.raises(fsgen.InvalidArgumentError, match="closed"):
        pair.generate("the", max_tokens=4)


def test_closing_a_model_while_it_generates(tiny_small):
    model = fsgen.Model(tiny_small, **LONG_CTX)
    stream = model.stream("hello world", **LONG)
    next(stream)
    thread, _ = cancel_soon(model.close, 0.1)
    list(stream)
    thread.join()
    assert stream.result.finish_reason == "cancelled"
    assert model.closed
    with pytest.raises(fsgen.FsgenError, match="closed"):
        model.generate("hello", max_tokens=4)


def test_pair_close_while_another_thread_generates(tiny_small, tiny_large):
    pair = fsgen.Pair(tiny_small, tiny_large, **LONG_CTX)
    results = {}

    def generate():
        try:
            results["r"] = pair.generate("hello world", method="speculative", **LONG)
        except fsgen.FsgenError as exc:
            results["error"] = exc

    thread = threading.Thread(target=generate)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    pair.close()
    thread.join(30)
    assert not thread.is_alive()
    assert time.monotonic() - started < PROMPT_CANCEL_S + 1
    assert results.get("r") is None or results["r"].finish_reason == "cancelled"


EXIT_CHILD = textwrap.dedent(r"""
    import sys, threading, fsgen
    small, large, mode = sys.argv[1:4]
    pair = fsgen.Pair(small, large, n_ctx=16384, n_threads=1)
    model = fsgen.Model(small, n_ctx=256, n_threads=1)
    if mode == "stream":  # a live stream, never closed, at interpreter exit
        stream = pair.stream("hello world", max_tokens=16000)
        next(stream)
    elif mode == "thread":  # a daemon thread in the middle of generate() at exit
        threading.Thread(target=lambda: pair.generate("hello world", max_tokens=16000), daemon=True).start()
        import time; time.sleep(0.3)
    elif mode == "cycle":  # objects in a reference cycle, freed by the collector in any order
        class Holder: pass
        h = Holder(); h.pair = pair; h.self = h; h.model = model; h.stream = pair.stream("the", max_tokens=16000)
        del h
    print("EXITING", flush=True)
""")


@pytest.mark.parametrize("mode", ["plain", "stream", "thread", "cycle"])
def test_interpreter_exit_with_live_objects(tiny_small, tiny_large, mode):
    """Whatever is alive at exit (a running stream, a generating daemon thread, cycles), Python
    exits cleanly and promptly: contexts never outlive their models."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", EXIT_CHILD, str(tiny_small), str(tiny_large), mode],
                          capture_output=True, text=True, timeout=60, env=child_env())
    assert "EXITING" in done.stdout
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    assert "terminate called" not in done.stderr and "Fatal" not in done.stderr, done.stderr[-3000:]
    assert time.monotonic() - started < 30


# ---- memory: benchmarks/soak.py ----

SOAK = REPO / "benchmarks" / "soak.py"


def run_soak(*args):
    done = subprocess.run([sys.executable, str(SOAK), *args], capture_output=True, text=True, timeout=600,
                          env=child_env())
    assert done.returncode == 0, f"resident memory grew:\n{done.stdout}\n{done.stderr[-3000:]}"
    assert "load/free" in done.stdout and "FAIL" not in done.stdout


def test_memory_stays_flat_short():
    """A shorter soak in the default run: 300 calls, 20 load/free cycles, 100 server requests."""
    run_soak("--calls", "300", "--cycles", "20", "--server-requests", "100")


@pytest.mark.slow
def test_memory_stays_flat_soak():
    """The full soak: 1,000 generate calls and 50 load/free cycles, RSS within 5%."""
    run_soak()
