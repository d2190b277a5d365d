"""`fsgen serve` at its defaults against llama.cpp's own server and fsgen in-process, at the client.

    python benchmarks/serve_bench.py [--edit-prompts 2] [--free-prompts 2] [--max-tokens 128] [--threads 2]
                                     [--small S.gguf --large L.gguf] [--clients 1 4] [--repeats 1]
                                     [--sampling greedy openai] [--method M]
                                     [--llama-server PATH | --no-llama-server]

Servers, each in its own process (only one decodes at a time):
- `fsgen serve` at its defaults (no --method: the pair's default, speculative with the planner's
  choice of drafts; calibrated before it reports ready);
- llama.cpp's own `llama-server`, built from the same pinned source with the same CPU flags
  (`benchmarks/out/llama-build`, built on first use with `-DLLAMA_USE_PREBUILT_UI=OFF`): the large
  model alone (`-np 1`), with the same draft model (`-md`, its draft-simple with default 3-token
  drafts, `-np 1`), and with the draft model at its default slots (continuous batching: the
  several-clients rows only).

Requests: a streamed chat completion over HTTP on 127.0.0.1, the same body to every server, per
sampling setting: greedy (temperature 0) and OpenAI's defaults (temperature 1, top_p 1; top_k 0
and min_p 0 sent as well, since llama-server would otherwise add its own top_k 40 and min_p 0.05;
fsgen serve applies these when a request names nothing), seeded.

One client: each prompt runs through every server and in-process (Pair.stream, chat messages)
side by side, the order turning with each prompt. Measured at the client: end-to-end tokens/s
(tokens / time from request to last byte) and first-token latency; per prompt, fsgen serve against
llama-server's better configuration (the one with the higher median) and the in-process run.
Several clients: N at once, each sending a prompt; aggregate tokens/s (all tokens / wall time) and
latency p50 / p95. fsgen serve runs one generation at a time (FIFO), so its aggregate stays near
one client's while latency grows with the line.
"""
from __future__ import annotations

import argparse
import contextlib
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


SAMPLINGS = {"greedy": {"temperature": 0},
             "openai": {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0}}
SAMPLING_LABELS = {"greedy": "greedy", "openai": "OpenAI's defaults (T 1, top_p 1)"}


def start_llama_server(exe, small, large, threads: int, n_ctx: int, slots: int | None, draft: bool = True):
    port = free_port()
    cmd = [str(exe), "-m", str(large), "--host", "127.0.0.1", "--port", str(port), "-t", str(threads),
           "-ngl", "0", "--no-webui"]
    if draft:
        cmd += ["-md", str(small), "--spec-type", "draft-simple", "-td", str(threads), "-ngld", "0"]
    if slots is None:
        cmd += ["-c", str(n_ctx * 4)]  # its default slots share the context: room for each
    else:
        cmd += ["-c", str(n_ctx), "-np", str(slots)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    return proc, url


def start_server(small, large, threads: int, n_ctx: int, method: str | None):
    extra = ["--method", method] if method else []
    proc = subprocess.Popen([sys.executable, "-m", "fsgen.cli", "serve", "--small", str(small), "--large", str(large),
                             "--port", "0", "--threads", str(threads), "--n-ctx", str(n_ctx), *extra],
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


def in_process(pair, prompt: str, method: str | None, max_tokens: int, sampling: dict, seed: int) -> dict:
    t0 = time.perf_counter()
    first = None
    extra = {"method": method} if method else {}
    if sampling.get("temperature", 1) > 0:
        extra |= dict(sampling, seed=seed)
    stream = pair.stream(messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, **extra)
    for chunk in stream:
        if first is None and chunk.text:
            first = time.perf_counter()
    end = time.perf_counter()
    return dict(first=first - t0, seconds=end - t0, tokens=len(stream.result.tokens), text=stream.result.text)


def over_http(client, prompt: str, method: str | None, max_tokens: int, sampling: dict, seed: int) -> dict:
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "seed": seed,
            "stream": True, "stream_options": {"include_usage": True}, **sampling}
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
    parser.add_argument("--edit-prompts", type=int, default=2, help="input-grounded code edits (bench_prompts.py)")
    parser.add_argument("--free-prompts", type=int, default=2, help="a HumanEval completion, then prose")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--method", default=None, help="fsgen serve --method (default: its own default)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--sampling", nargs="+", choices=list(SAMPLINGS), default=list(SAMPLINGS))
    parser.add_argument("--repeats", type=int, default=1, help="side-by-side runs per prompt")
    parser.add_argument("--llama-server", type=pathlib.Path, help="llama-server to compare with (default: build one)")
    parser.add_argument("--no-llama-server", action="store_true")
    parser.add_argument("--no-in-process", action="store_true", help="skip the in-process rows")
    args = parser.parse_args()

    import httpx

    import fsgen
    from bench_prompts import edit_prompts, free_prompts
    small, large = (args.small, args.large) if args.small else map(str, fsgen.pull("demo"))
    prompts = [text for _, text in edit_prompts(args.edit_prompts) + free_prompts(args.free_prompts)]
    from llama_cpp_tools import build
    exe = None if args.no_llama_server else (args.llama_server or build("llama-server", args.threads))
    servers = {}  # name -> (process, url, method field)
    one_client_rows = {setting: [] for setting in args.sampling}
    concurrent = []
    try:
        proc, url = start_server(small, large, args.threads, args.n_ctx, args.method)
        servers["fsgen serve"] = (proc, url, args.method)
        if exe is not None:
            for name, slots, draft in (("llama-server, large alone (-np 1)", 1, False),
                                       ("llama-server -md (-np 1)", 1, True),
                                       ("llama-server -md (default slots)", None, True)):
                proc, url = start_llama_server(exe, small, large, args.threads, args.n_ctx, slots, draft)
                servers[name] = (proc, url, None)
        # No keep-alive: a server may drop an idle connection while the others run (llama-server
        # does), and a reused dead one fails the request.
        clients = {name: httpx.Client(base_url=url, timeout=1200, limits=httpx.Limits(max_keepalive_connections=0))
                   for name, (_, url, _) in servers.items()}
        one_client = [n for n in servers if n != "llama-server -md (default slots)"]
        with contextlib.ExitStack() as stack:
            pair = None if args.no_in_process else stack.enter_context(
                fsgen.Pair(small, large, n_ctx=args.n_ctx, n_threads=args.threads))
            engines = ([] if pair is None else ["in-process"]) + one_client
            for setting in args.sampling:  # warm every engine up
                if pair is not None:
                    in_process(pair, "hello", args.method, 8, SAMPLINGS[setting], 0)
                for name in servers:
                    over_http(clients[name], "hello", servers[name][2], 8, SAMPLINGS[setting], 0)
            for setting in args.sampling:
                sampling = SAMPLINGS[setting]
                for i, prompt in enumerate(prompts):
                    for repeat in range(args.repeats):  # the order turns: no engine always goes first
                        shift = (i + repeat) % len(engines)
                        row = {}
                        for name in engines[shift:] + engines[:shift]:
                            row[name] = (in_process(pair, prompt, args.method, args.max_tokens, sampling, i)
                                         if name == "in-process" else
                                         over_http(clients[name], prompt, servers[name][2], args.max_tokens,
                                                   sampling, i))
                        one_client_rows[setting].append(row)
                        print(f"{setting} prompt {i + 1}/{len(prompts)}: " + " | ".join(
                            f"{n} {tps(r):.2f} tok/s" for n, r in row.items()), file=sys.stderr, flush=True)
        for setting in args.sampling:
            for name, (_, url, method) in servers.items():
                for n in args.clients:
                    if n == 1:
                        continue
                    concurrent.append((setting, name, n, *run_clients(url, method, prompts, n, args.max_tokens,
                                                                      SAMPLINGS[setting])))
                    print(f"{setting}, {name}, {n} clients: {concurrent[-1][3]:.2f} tok/s aggregate", file=sys.stderr)
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

    print(f"\nfsgen serve against llama-server and in-process: {pathlib.Path(small).name} + {pathlib.Path(large).name}, "
          f"fsgen method {args.method or 'default'}, {len(prompts)} prompts ({args.edit_prompts} code edits, "
          f"{args.free_prompts} free-form), {args.max_tokens} max tokens, {args.threads} thread(s), "
          f"{args.repeats} run(s) each; end-to-end tokens/s at the client")
    for setting, rows in one_client_rows.items():
        print_one_client(SAMPLING_LABELS[setting], rows)
    if concurrent:
        print("\n| sampling | server | clients | aggregate tokens/s | latency p50 (s) | latency p95 (s) |")
        print("|---|---|---|---|---|---|")
        for setting, name, n, agg, p50, p95 in concurrent:
            print(f"| {setting} | {name} | {n} | {agg:.2f} | {p50:.2f} | {p95:.2f} |")
    return 0


def tps(r: dict) -> float:
    return r["tokens"] / r["seconds"]


def generation_tps(r: dict) -> float:
    """Tokens/s after the first token: the generation alone, without the prompt's processing (which
    llama-server's prompt cache can skip for a prompt it has seen, fsgen only for the last one)."""
    return (r["tokens"] - 1) / max(1e-9, r["seconds"] - r["first"])


def run_clients(url: str, method: str | None, prompts: list[str], n: int, max_tokens: int,
                sampling: dict) -> tuple[float, float, float]:
    """n clients at once, each sending one prompt: aggregate tokens/s, latency p50 and p95."""
    import httpx
    latencies, tokens = [], []
    lock = threading.Lock()

    def client_run(k: int) -> None:
        with httpx.Client(base_url=url, timeout=1200) as c:
            r = over_http(c, prompts[k % len(prompts)], method, max_tokens, sampling, k)
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
    return sum(tokens) / wall, pct(latencies, 0.5), pct(latencies, 0.95)


def print_one_client(label: str, rows: list[dict]) -> None:
    """Per engine: median tokens/s and first token; fsgen serve against each other engine per prompt,
    end to end and after the first token."""
    names = list(rows[0])
    llama = [n for n in names if n.startswith("llama-server")]
    better = max(llama, key=lambda n: statistics.median(tps(r[n]) for r in rows)) if llama else None
    print(f"\none client, {label}")
    print("| engine | tokens/s (median) | fsgen serve × this (median, worst prompt) | first token (s, median) "
          "| after the first token: tokens/s | fsgen serve × this |")
    print("|---|---|---|---|---|---|")
    for name in names:
        ratio = [tps(r["fsgen serve"]) / tps(r[name]) for r in rows]
        after = [generation_tps(r["fsgen serve"]) / generation_tps(r[name]) for r in rows]
        mark = " (the better llama-server)" if name == better else ""
        own = name == "fsgen serve"
        print(f"| {name}{mark} | {statistics.median(tps(r[name]) for r in rows):.2f} | "
              f"{'—' if own else f'{statistics.median(ratio):.3f}, {min(ratio):.3f}'} | "
              f"{statistics.median(r[name]['first'] for r in rows):.3f} | "
              f"{statistics.median(generation_tps(r[name]) for r in rows):.2f} | "
              f"{'—' if own else f'{statistics.median(after):.3f}, {min(after):.3f}'} |")


if __name__ == "__main__":
    sys.exit(main())
