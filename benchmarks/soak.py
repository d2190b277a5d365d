"""Memory soak: resident memory stays flat over many calls and many load/free cycles.

    python benchmarks/soak.py [--small S.gguf --large L.gguf] [--calls 1000] [--cycles 50] [--server-requests 300]

Phase "generate": one Pair (with small_base, for proxy) runs --calls generations cycling through
every method, greedy and sampled, with traces, streams read to the end and streams abandoned
half-way. Phase "load/free": --cycles times, load both models and a Pair, generate, close all.
Resident memory (RSS) is sampled through each phase; a phase passes when its end (the median of
the last 3 samples) is within --tolerance (5%) of its value after warm-up (the median of the
first 3 samples after the first --warmup fraction: allocator pools, llama.cpp's graph caches and
the like settle). The peak after warm-up is reported too. Phase "server": `fsgen serve` as a
subprocess answers --server-requests HTTP requests (chat and completions, streamed and not, every
method, clients that leave mid-stream); the server process's RSS is sampled the same way
(--server-requests 0 skips it; it needs the serve extra and httpx). Prints a table; exits 1 if a
phase fails.

Without --small/--large it builds the tiny test-bed models (tests/support/tinymodels.py, needs `gguf`).
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ["hello world", "Once upon a time", "the", "and of to the hello\n", "caf\u00e9 \u20ac \U0001F600"]


def rss_bytes() -> int:
    """Current resident set size of this process."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    try:
        import psutil
        return psutil.Process().memory_info().rss
    except ImportError:
        import resource  # peak, not current: a weaker check where nothing else is available
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def measure() -> int:
    gc.collect()
    return rss_bytes()


def tiny_models(directory: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(ROOT / "tests" / "support"))
    import tinymodels
    small = tinymodels.make_model(directory / "soak_small.gguf", n_layer=2, n_embd=64, n_head=4, n_head_kv=4,
                                  n_ff=128, seed=0)
    large = tinymodels.make_model(directory / "soak_large.gguf", n_layer=4, n_embd=128, n_head=4, n_head_kv=2,
                                  n_ff=256, seed=1, chain_skip=0.2)
    return small, large


def one_call(pair, i: int, max_tokens: int) -> None:
    import fsgen
    methods = list(fsgen.methods())  # every method of the core's table
    method = methods[i % len(methods)]
    prompt = PROMPTS[(i // len(methods)) % len(PROMPTS)]
    sampled = (i // 3) % 2 == 1
    kwargs = dict(method=method, max_tokens=max_tokens, trace=i % 2 == 0,
                  temperature=0.8 if sampled else 0.0, seed=i)
    if method in ("fs", "oracle"):
        router = next(p for p in fsgen.param_table() if p["name"] == "router")
        routers = [r for r in router["choices"] if r != "never"]
        kwargs["router"] = routers[i % len(routers)]
    kind = i % 10
    if kind == 7:  # a stream read to the end
        stream = pair.stream(prompt, **kwargs)
        for _ in stream:
            pass
        assert stream.result is not None
    elif kind == 8:  # a stream abandoned half-way
        for j, _ in enumerate(pair.stream(prompt, **kwargs)):
            if j == max_tokens // 2:
                break
    elif kind == 9:  # a stream never iterated, dropped
        pair.stream(prompt, **kwargs)
    else:
        result = pair.generate(prompt, **kwargs)
        assert result.finish_reason in ("eog", "stop", "length")


def phase_generate(fsgen, small, large, args, samples: list) -> None:
    with fsgen.Pair(small, large, small_base=small, n_ctx=args.n_ctx, n_threads=args.threads) as pair:
        for i in range(args.calls):
            one_call(pair, i, args.max_tokens)
            if (i + 1) % max(1, args.calls // 40) == 0:
                samples.append((i + 1, measure()))


def phase_load_free(fsgen, small, large, args, samples: list) -> None:
    methods = list(fsgen.methods())
    for i in range(args.cycles):
        s = fsgen.Model(small, n_ctx=args.n_ctx, n_threads=args.threads)
        l = fsgen.Model(large, n_ctx=args.n_ctx, n_threads=args.threads)
        pair = fsgen.Pair(s, l, small_base=s, n_ctx=args.n_ctx, n_threads=args.threads)
        pair.generate(PROMPTS[i % len(PROMPTS)], method=methods[i % len(methods)], max_tokens=8)
        s.generate("hello", max_tokens=4)
        if i % 2:  # both ways of freeing: close() explicitly, or drop the objects
            pair.close()
            s.close()
            l.close()
        del pair, s, l
        samples.append((i + 1, measure()))


def server_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def phase_server(small, large, args, samples: list) -> None:
    """fsgen serve in a subprocess; requests of every kind; its RSS sampled from /proc."""
    import json
    import signal
    import subprocess

    import httpx

    import fsgen
    methods = list(fsgen.methods())  # every method of the core's table
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "fsgen.cli", "serve", "--small", str(small), "--large", str(large),
                             "--small-base", str(small), "--port", "0", "--threads", str(args.threads),
                             "--n-ctx", str(args.n_ctx), "--temperature", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        url = None
        for line in proc.stdout:
            if "listening on " in line:
                url = line.split("listening on ", 1)[1].split()[0].rstrip("/")
                break
        if url is None:
            raise RuntimeError("fsgen serve did not start")
        deadline = time.monotonic() + 120
        while httpx.get(url + "/health", timeout=10).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("fsgen serve did not load the models")
            time.sleep(0.1)
        with httpx.Client(base_url=url, timeout=120) as client:
            for i in range(args.server_requests):
                method = methods[i % len(methods)]
                prompt = PROMPTS[(i // len(methods)) % len(PROMPTS)]
                body = dict(method=method, max_tokens=args.max_tokens, temperature=0.8 if (i // 3) % 2 else 0.0,
                            seed=i)
                chat = i % 2 == 0
                body.update(messages=[{"role": "user", "content": prompt}]) if chat else body.update(prompt=prompt)
                path = "/v1/chat/completions" if chat else "/v1/completions"
                kind = i % 5
                if kind in (3, 4):  # streamed: read to the end, or left half-way
                    with client.stream("POST", path, json=dict(body, stream=True)) as r:
                        for j, line in enumerate(r.iter_lines()):
                            if kind == 4 and j == args.max_tokens:
                                break
                else:
                    r = client.post(path, json=body)
                    if r.status_code != 200:
                        raise RuntimeError(f"request {i}: {r.status_code} {r.text}")
                    json.loads(r.text)
                if (i + 1) % max(1, args.server_requests // 40) == 0:
                    samples.append((i + 1, server_rss(proc.pid)))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def evaluate(name: str, samples: list, total: int, warmup: float, tolerance: float) -> dict:
    """warm: the median of the first 3 samples after warm-up; end: the median of the last 3
    (medians: one sample caught while the allocator holds a transient block is not a trend)."""
    warm_index = next(k for k, (n, _) in enumerate(samples) if n >= max(1, int(total * warmup)))
    after = [rss for _, rss in samples[warm_index:]]
    warm, end = statistics.median(after[:3]), statistics.median(after[-3:])
    peak = max(after)
    return dict(phase=name, n=total, warm=warm, end=end, peak=peak, change=(end - warm) / warm,
                peak_change=(peak - warm) / warm, ok=end <= warm * (1 + tolerance))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=Path)
    parser.add_argument("--large", type=Path)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--server-requests", type=int, default=300, help="0: skip the server phase")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--n-ctx", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of each phase treated as warm-up")
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args(argv)
    if (args.small is None) != (args.large is None):
        parser.error("give both --small and --large, or neither (tiny test-bed models)")

    try:
        import fsgen  # the installed package
    except ImportError:  # a source tree with a dev build linked into python/fsgen
        sys.path.insert(0, str(ROOT / "python"))
        import fsgen

    with tempfile.TemporaryDirectory() as tmp:
        small, large = (args.small, args.large) if args.small else tiny_models(Path(tmp))
        started = time.monotonic()
        generate_samples, load_samples = [], []
        phase_generate(fsgen, small, large, args, generate_samples)
        t_generate = time.monotonic() - started
        phase_load_free(fsgen, small, large, args, load_samples)
        t_load = time.monotonic() - started - t_generate
        server_samples = []
        if args.server_requests:
            phase_server(small, large, args, server_samples)
        t_server = time.monotonic() - started - t_generate - t_load

    rows = [evaluate(f"generate ({t_generate:.0f} s)", generate_samples, args.calls, args.warmup, args.tolerance),
            evaluate(f"load/free ({t_load:.0f} s)", load_samples, args.cycles, args.warmup, args.tolerance)]
    if server_samples:
        rows.append(evaluate(f"server ({t_server:.0f} s)", server_samples, args.server_requests, args.warmup,
                             args.tolerance))
    mib = 1024 * 1024
    print(f"fsgen {fsgen.__version__} memory soak: {small.name} + {large.name}, pid {os.getpid()}")
    print(f"{'phase':<22} {'n':>6} {'warm MiB':>9} {'end MiB':>9} {'peak MiB':>9} {'end':>8} {'peak':>8}  result")
    for r in rows:
        print(f"{r['phase']:<22} {r['n']:>6} {r['warm'] / mib:>9.1f} {r['end'] / mib:>9.1f} {r['peak'] / mib:>9.1f} "
              f"{100 * r['change']:>+7.1f}% {100 * r['peak_change']:>+7.1f}%  "
              f"{'ok' if r['ok'] else 'FAIL (over ' + format(args.tolerance, '.0%') + ')'}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
