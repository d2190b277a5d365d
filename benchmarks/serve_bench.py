"""`fsgen serve` against fsgen in-process, measured at the client, on the demo pair.

    python benchmarks/serve_bench.py [--prompts 4] [--max-tokens 96] [--threads 2] [--method speculative]
                                     [--small S.gguf --large L.gguf] [--clients 1 2 4 8] [--repeats 1]
                                     [--llama-server PATH | --no-llama-server]

One client: each prompt runs in-process (Pair.stream, chat messages) and through the server
(streamed chat completion over HTTP on 127.0.0.1), side by side (alternating which goes first),
greedy, same method. Measured at
the client: first-token latency (request to first piece of text) and end-to-end tokens/s (tokens
/ time from request to last byte); the ratio server / in-process per prompt, median and worst.
Concurrent clients: N clients at once, each sending the prompts in turn; aggregate tokens/s (all
tokens / wall time) and per-request latency p50 / p95. The server runs one generation at a time
(FIFO), so aggregate tokens/s stays near one client's while latency grows with the line.

The anchor: llama.cpp's own `llama-server`, built from the same pinned source with the same CPU
flags (`benchmarks/out/llama-build`, built on first use with `-DLLAMA_USE_PREBUILT_UI=OFF`),
serving the large model with the same draft model (`--model-draft`, llama.cpp's draft-simple with
its default 3-token drafts), measured by the same client code, once with `-np 1` (one slot, like
fsgen) and once with its default slots (continuous batching across clients). Only one server
decodes at a time; each runs in its own process.
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


def wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 300) -> None:
    import httpx
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("server did not become healthy")


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_llama_server(exe, small, large, threads: int, n_ctx: int, slots: int | None):
    port = free_port()
    cmd = [str(exe), "-m", str(large), "-md", str(small), "--spec-type", "draft-simple", "--host", "127.0.0.1",
           "--port", str(port), "-t", str(threads), "-td", str(threads), "-ngl", "0", "-ngld", "0",
           "--no-webui", "--temp", "0"]
    if slots is None:
        cmd += ["-c", str(n_ctx * 4)]  # its default slots share the context: room for each
    else:
        cmd += ["-c", str(n_ctx), "-np", str(slots)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    return proc, url


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
    wait_healthy(url, proc)
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


def over_http(client, prompt: str, method: str | None, max_tokens: int) -> dict:
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    if method is not None:  # fsgen's own field (llama-server gets none)
        body["method"] = method
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
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--method", default="speculative")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=1, help="side-by-side runs per prompt")
    parser.add_argument("--llama-server", type=pathlib.Path, help="llama-server to compare with (default: build one)")
    parser.add_argument("--no-llama-server", action="store_true")
    args = parser.parse_args()

    import httpx

    import fsgen
    from bench import humaneval_prompts
    small, large = (args.small, args.large) if args.small else map(str, fsgen.pull("demo"))
    prompts = humaneval_prompts(args.prompts)
    from llama_cpp_tools import build
    exe = None if args.no_llama_server else (args.llama_server or build("llama-server", args.threads))
    servers = {}  # name -> (process, url, method field)
    rows = []
    try:
        proc, url = start_server(small, large, args.threads, args.n_ctx)
        servers["fsgen serve"] = (proc, url, args.method)
        if exe is not None:
            for name, slots in (("llama-server -np 1", 1), ("llama-server (default slots)", None)):
                proc, url = start_llama_server(exe, small, large, args.threads, args.n_ctx, slots)
                servers[name] = (proc, url, None)
        # No keep-alive: a server may drop an idle connection while the others run (llama-server
        # does), and a reused dead one fails the request.
        clients = {name: httpx.Client(base_url=url, timeout=1200, limits=httpx.Limits(max_keepalive_connections=0))
                   for name, (_, url, _) in servers.items()}
        one_client = [n for n in servers if n != "llama-server (default slots)"]
        with fsgen.Pair(small, large, n_ctx=args.n_ctx, n_threads=args.threads) as pair:
            in_process(pair, "hello", args.method, 8)  # warm every engine up
            for name in servers:
                over_http(clients[name], "hello", servers[name][2], 8)
            for i, prompt in enumerate(prompts):
                for _ in range(args.repeats):  # alternate which runs first: no order bias
                    order = ["in-process", *one_client]
                    if len(rows) % 2:
                        order.reverse()
                    row = {}
                    for name in order:
                        row[name] = (in_process(pair, prompt, args.method, args.max_tokens) if name == "in-process"
                                     else over_http(clients[name], prompt, servers[name][2], args.max_tokens))
                    rows.append(row)
                    print(f"prompt {i}: " + " | ".join(
                        f"{n} {r['tokens'] / r['seconds']:.2f} tok/s, first {r['first']:.3f} s" for n, r in row.items())
                        + (" | same text" if row["in-process"]["text"] == row["fsgen serve"]["text"] else
                           " | TEXT DIFFERS"), file=sys.stderr)
        concurrent = []
        for name, (_, url, method) in servers.items():
            for n in args.clients:
                latencies, tokens = [], []
                lock = threading.Lock()

                def client_run(k: int) -> None:
                    with httpx.Client(base_url=url, timeout=1200) as c:
                        r = over_http(c, prompts[k % len(prompts)], method, args.max_tokens)
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
                concurrent.append((name, n, sum(tokens) / wall, pct(latencies, 0.5), pct(latencies, 0.95)))
                print(f"{name}, {n} clients: {concurrent[-1][2]:.2f} tok/s aggregate", file=sys.stderr)
        for c in clients.values():
            c.close()
    finally:
        for proc, _, _ in servers.values():
            proc.send_signal(signal.SIGINT)
        for proc, _, _ in servers.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()

    print(f"\nfsgen serve vs in-process and llama-server: {pathlib.Path(small).name} + {pathlib.Path(large).name}, "
          f"fsgen method {args.method}, {len(prompts)} HumanEval prompts, {args.max_tokens} max tokens, "
          f"{args.threads} thread(s), greedy\n")
    print("| one client | tokens/s at the client (median) | × in-process (median, worst) | first token (s, median) |")
    print("|---|---|---|---|")
    for name in rows[0]:
        tps = [r[name]["tokens"] / r[name]["seconds"] for r in rows]
        ratio = [r[name]["tokens"] / r[name]["seconds"] / (r["in-process"]["tokens"] / r["in-process"]["seconds"])
                 for r in rows]
        print(f"| {name} | {statistics.median(tps):.2f} | {statistics.median(ratio):.3f}, {min(ratio):.3f} | "
              f"{statistics.median(r[name]['first'] for r in rows):.3f} |")
    print("\n| server | clients | aggregate tokens/s | latency p50 (s) | latency p95 (s) |")
    print("|---|---|---|---|---|")
    for name, n, agg, p50, p95 in concurrent:
        print(f"| {name} | {n} | {agg:.2f} | {p50:.2f} | {p95:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
