"""System 2 on another machine: fsgen's methods with the large model behind llama.cpp's RPC backend.

    python benchmarks/rpc_bench.py                       # demo pair, delays 0,1,5,20 ms, 3 prompts
    python benchmarks/rpc_bench.py --delays 0,5 --prompts 2 --max-tokens 48 --small S.gguf --large L.gguf

One `fsgen rpc-server` on loopback holds System 2; a userspace delay proxy (tests/support/delay_proxy.py) adds
the given delay per direction (a round trip gains twice that). For every delay the same methods run
all-local and with System 2 remote, prompt by prompt in turn (a noisy neighbour hits both alike);
rows report medians over prompts: generation tokens/s, the ratio remote/local (taken per prompt),
System 2 calls and bytes on the wire (both directions) per generated token. The helper process's own
cost per call (round trip in this process minus the helper's decode time) is printed at the end.
Greedy outputs are checked to match between local and remote.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

import fsgen  # noqa: E402
from delay_proxy import DelayProxy  # noqa: E402
from rpc_server_process import RpcServer  # noqa: E402

PROMPTS = [
    "Write a Python function that returns the n-th Fibonacci number, with a docstring.",
    "Write a Python function that checks whether a string is a palindrome, ignoring case and spaces.",
    "Write a Python function that merges two sorted lists into one sorted list.",
    "Write a Python class for a stack with push, pop, peek and is_empty.",
    "Write a Python function that counts the words in a text file.",
]

METHODS = [
    ("large", "large", {}),
    ("speculative", "speculative", {}),
    ("fs", "fs", {}),
    ("fs budget 0.1", "fs", {"router": "budget", "system2_share": 0.1}),
]


def run(pair, prompt, method, params, max_tokens, proxy=None):
    before = proxy.bytes() if proxy else (0, 0)
    r = pair.generate(prompt, method=method, max_tokens=max_tokens, **params)
    after = proxy.bytes() if proxy else (0, 0)
    s = r.stats
    n = max(1, s["n_tokens"])
    return {"tps": s["tokens_per_second"], "n": s["n_tokens"], "tokens": r.tokens,
            "calls_per_token": s["system2_calls"] / n,
            "bytes_per_token": (after[0] - before[0] + after[1] - before[1]) / n}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small")
    ap.add_argument("--large")
    ap.add_argument("--delays", default="0,1,5,20", help="added delay per direction, ms")
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="threads of the local contexts and of the server")
    ap.add_argument("--n-ctx", type=int, default=1024)
    ap.add_argument("--json", type=pathlib.Path)
    args = ap.parse_args()
    if not (args.small and args.large):
        args.small, args.large = (str(p) for p in fsgen.pull("demo"))
    prompts = PROMPTS[: args.prompts]
    delays = [float(d) for d in args.delays.split(",")]
    cache = ROOT / "benchmarks" / "out" / "rpc-cache"
    cache.mkdir(parents=True, exist_ok=True)

    options = dict(n_ctx=args.n_ctx, n_threads=args.threads)
    server = RpcServer(threads=args.threads, cache=cache, timeout=60)
    rows, overheads, mismatches = [], [], []
    try:
        with fsgen.Pair(args.small, args.large, **options) as local:
            methods = []
            for label, method, params in METHODS:
                try:
                    local.generate(prompts[0], method=method, max_tokens=2, **params)
                    methods.append((label, method, params))
                except fsgen.InvalidArgumentError as exc:
                    print(f"skipping {label}: {exc}", file=sys.stderr)
            for delay in delays:
                with DelayProxy(server.port, delay_ms=delay) as proxy:
                    started = time.monotonic()
                    remote = fsgen.Pair(args.small, args.large, large_rpc=[proxy.endpoint], rpc_timeout=600,
                                        **options)
                    print(f"delay {delay:g} ms: System 2 loaded over RPC in {time.monotonic() - started:.1f} s",
                          file=sys.stderr)
                    with remote:
                        for label, method, params in methods:
                            results = []
                            for prompt in prompts:
                                a = run(local, prompt, method, params, args.max_tokens)
                                b = run(remote, prompt, method, params, args.max_tokens, proxy)
                                if a["tokens"] != b["tokens"]:
                                    mismatches.append((delay, label, prompt))
                                results.append((a, b))
                            row = {
                                "delay_ms": delay, "method": label,
                                "local_tps": statistics.median(a["tps"] for a, _ in results),
                                "remote_tps": statistics.median(b["tps"] for _, b in results),
                                "ratio": statistics.median(b["tps"] / a["tps"] for a, b in results if a["tps"]),
                                "worst_ratio": min(b["tps"] / a["tps"] for a, b in results if a["tps"]),
                                "calls_per_token": statistics.median(b["calls_per_token"] for _, b in results),
                                "bytes_per_token": statistics.median(b["bytes_per_token"] for _, b in results),
                            }
                            rows.append(row)
                            print(json.dumps(row), file=sys.stderr)
                        stats = remote.large.rpc_stats()
                        overheads.append((delay, stats["overhead_per_eval"], stats["evals"]))
    finally:
        server.kill()

    print(f"\nSystem 2 over RPC on loopback; small {pathlib.Path(args.small).name}, large "
          f"{pathlib.Path(args.large).name}; {len(prompts)} prompts x {args.max_tokens} tokens, greedy, "
          f"{args.threads} threads.\n")
    print("| delay/direction | method | local tok/s | remote tok/s | remote/local (median, worst) "
          "| System 2 calls/token | bytes/token |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['delay_ms']:g} ms | {r['method']} | {r['local_tps']:.1f} | {r['remote_tps']:.1f} | "
              f"{r['ratio']:.2f}, {r['worst_ratio']:.2f} | {r['calls_per_token']:.2f} | "
              f"{r['bytes_per_token'] / 1024:.1f} KiB |")
    print()
    for delay, overhead, evals in overheads:
        print(f"helper process overhead at {delay:g} ms: {overhead * 1e3:.2f} ms per call ({evals} calls)")
    if mismatches:
        print(f"\nWARNING: {len(mismatches)} runs differ between local and remote: {mismatches[:3]}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "overheads": overheads, "mismatches": mismatches}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
