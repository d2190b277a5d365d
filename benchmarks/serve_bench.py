"""`fsgen serve` against fsgen in-process, measured at the client, on the demo pair.

    python benchmarks/serve_bench.py [--prompts 4] [--max-tokens 96] [--threads 1] [--method speculative]
                                     [--small S.gguf --large L.gguf] [--clients 1 2 4 8] [--repeats 1]

One client: each prompt runs in-process (Pair.stream, chat messages) and through the server
(streamed chat completion over HTTP on 127.0.0.1), side by side (alternating which goes first),
greedy, same method. Measured at
the client: first-token latency (request to first piece of text) and end-to-end tokens/s (tokens
/ time from request to last byte); the ratio server / in-process per prompt, median and worst.
Concurrent clients: N clients at once, each sending the prompts in turn; aggregate tokens/s (all
tokens / wall time) and per-request latency p50 / p95. The server runs one generation at a time
(FIFO), so aggregate tokens/s stays near one client's while latency grows with the line.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def start_server(small, large, threads: int, n_ctx: int):
    proc = subprocess.Popen([sys.executable, "-m", "fsgen.cli", "serve", "--small", str(small), "--large", str(large),
                             "--port", "0", "--threads", str(threads), "--n-ctx", str(n_ctx), "--temperature", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    for line in proc.stdout:
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].split()[0].rstrip("/")
            break
    else:
        raise SystemExit("fsgen serve did not start")
    import httpx
    while httpx.get(url + "/health", timeout=10).status_code != 200:
        time.sleep(0.2)
    return proc, url


def in_process(pair, prompt: str, method: str, max_tokens: int) -> dict:
    t0 = time.perf_counter()
    first = None
    stream = pair.stream(messages=[{"role": "user", "content": prompt}], method=method, max_tokens=max_tokens)
    for chunk in stream:
        if first is None and chunk.text:
            first = time.perf_counter()
    end = time.perf_counter()
    return dict(first=first - t0, seconds=end - t0, tokens=len(stream.result.tokens), text=stream.result.text)


def over_http(client, prompt: str, method: str, max_tokens: int) -> dict:
    body = {"messages": [{"role": "user", "content": prompt}], "method": method, "max_tokens": max_tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    first, tokens, text = None, 0, []
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(r.read())
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
            for choice in event.get("choices", []):
                piece = choice.get("delta", {}).get("content")
                if piece:
                    text.append(piece)
                    if first is None:
                        first = time.perf_counter()
    end = time.perf_counter()
    return dict(first=first - t0, seconds=end - t0, tokens=tokens, text="".join(text))


def pct(values: list, q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small")
    parser.add_argument("--large")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--method", default="speculative")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=1, help="side-by-side runs per prompt")
    args = parser.parse_args()

    import httpx

    import fsgen
    from bench import humaneval_prompts
    small, large = (args.small, args.large) if args.small else map(str, fsgen.pull("demo"))
    prompts = humaneval_prompts(args.prompts)
    proc, url = start_server(small, large, args.threads, args.n_ctx)
    rows = []
    try:
        with fsgen.Pair(small, large, n_ctx=args.n_ctx, n_threads=args.threads) as pair, \
                httpx.Client(base_url=url, timeout=600) as client:
            in_process(pair, "hello", args.method, 8)  # warm both up
            over_http(client, "hello", args.method, 8)
            for i, prompt in enumerate(prompts):
                for _ in range(args.repeats):  # alternate which runs first: no order bias
                    if len(rows) % 2 == 0:
                        a = in_process(pair, prompt, args.method, args.max_tokens)
                        b = over_http(client, prompt, args.method, args.max_tokens)
                    else:
                        b = over_http(client, prompt, args.method, args.max_tokens)
                        a = in_process(pair, prompt, args.method, args.max_tokens)
                    rows.append((a, b))
                    same = "same text" if a["text"] == b["text"] else "TEXT DIFFERS"
                    print(f"prompt {i}: in-process {a['tokens'] / a['seconds']:.2f} tok/s, first {a['first']:.3f} s"
                          f" | server {b['tokens'] / b['seconds']:.2f} tok/s, first {b['first']:.3f} s | {same}",
                          file=sys.stderr)
        concurrent = []
        for n in args.clients:
            latencies, tokens = [], []
            lock = threading.Lock()

            def client_run(k: int) -> None:
                with httpx.Client(base_url=url, timeout=1200) as c:
                    r = over_http(c, prompts[k % len(prompts)], args.method, args.max_tokens)
                with lock:
                    latencies.append(r["seconds"])
                    tokens.append(r["tokens"])

            t0 = time.perf_counter()
            threads = [threading.Thread(target=client_run, args=(k,)) for k in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            concurrent.append((n, sum(tokens) / wall, pct(latencies, 0.5), pct(latencies, 0.95)))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)

    tps = [(a["tokens"] / a["seconds"], b["tokens"] / b["seconds"]) for a, b in rows]
    ratio = [b / a for a, b in tps]
    first = [(a["first"], b["first"]) for a, b in rows]
    print(f"\nfsgen serve vs in-process: {pathlib.Path(small).name} + {pathlib.Path(large).name}, method "
          f"{args.method}, {len(prompts)} HumanEval prompts, {args.max_tokens} max tokens, {args.threads} thread(s)\n")
    print("| one client | in-process | server | server / in-process (median, worst) |")
    print("|---|---|---|---|")
    print(f"| tokens/s at the client (end to end) | {statistics.median(a for a, _ in tps):.2f} | "
          f"{statistics.median(b for _, b in tps):.2f} | {statistics.median(ratio):.3f}, {min(ratio):.3f} |")
    d = [b - a for a, b in first]
    print(f"| first-token latency (s) | {statistics.median(a for a, _ in first):.3f} | "
          f"{statistics.median(b for _, b in first):.3f} | {statistics.median(d) * 1000:+.1f} ms, "
          f"{max(d) * 1000:+.1f} ms |")
    print("\n| clients | aggregate tokens/s | latency p50 (s) | latency p95 (s) |")
    print("|---|---|---|---|")
    for n, agg, p50, p95 in concurrent:
        print(f"| {n} | {agg:.2f} | {p50:.2f} | {p95:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
