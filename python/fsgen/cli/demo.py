"""`fsgen demo`: fast-and-slow decoding on the demo pair, next to small-only and large-only."""
from __future__ import annotations

import sys

from .render import legend, print_stream, use_colour

PROMPT = ("Write a Python function `merge_intervals(intervals)` that merges overlapping intervals "
          "and returns them sorted. Keep it short.")


# On the demo pair, consulting System 2 where System 1's entropy exceeds 1 nat calls it on 2-4%
# of tokens, enough to see it step in; on this CPU that runs about as fast as the large model
# alone (2 nats: 0.5% of tokens, 1.4x; docs/benchmarks.md).
DEMO_THRESHOLD = 1.0


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="pull the demo pair and show fast-and-slow decoding")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--max-tokens", type=int, default=160)
    p.add_argument("--threshold", type=float, default=None, help="entropy router threshold (nats)")
    p.set_defaults(run=run)


def run(args) -> int:
    from .. import hub
    from .._api import Pair

    print("fsgen demo: Qwen2.5-Coder 0.5B (System 1, fast) + 1.5B (System 2, slow)", file=sys.stderr)
    small_path, large_path = hub.pull("demo")
    messages = [{"role": "user", "content": PROMPT}]
    max_tokens = args.max_tokens
    fs_params = {"router": "entropy", "threshold": DEMO_THRESHOLD if args.threshold is None else args.threshold}
    with Pair(small_path, large_path, n_threads=args.threads, n_ctx=2048) as pair:
        print(f"\nPrompt: {PROMPT}\n{legend(use_colour(sys.stdout))}\n", file=sys.stderr)
        result = print_stream(pair.stream(messages=messages, method="fs", max_tokens=max_tokens, **fs_params))
        if result is None:
            return 130
        rows = [(f"fs (entropy > {fs_params['threshold']:g})", result)]
        for method in ("small", "large"):
            print(f"[running {method}-only on the same prompt for comparison ...]", file=sys.stderr)
            rows.append((f"{method} only", pair.generate(messages=messages, method=method, max_tokens=max_tokens)))
    large_tps = rows[2][1].stats["tokens_per_second"]
    print(f"\n{'method':<22}{'tokens':>7}{'tokens/s':>10}{'vs large':>10}{'System 2 share':>16}")
    for name, r in rows:
        s = r.stats
        ratio = s["tokens_per_second"] / large_tps if large_tps else float("nan")
        print(f"{name:<22}{s['n_tokens']:>7}{s['tokens_per_second']:>10.1f}{ratio:>9.2f}x"
              f"{100 * s['system2_fraction']:>15.1f}%")
    same = rows[0][1].tokens == rows[2][1].tokens
    print(f"\nfs output {'equals' if same else 'differs from'} large-only output "
          f"({sum(a == b for a, b in zip(rows[0][1].tokens, rows[2][1].tokens))} leading tokens compared equal).")
    return 0
