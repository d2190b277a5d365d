"""``fsgen calibrate``: measure and print this machine's verify cost curve and the draft lengths
it implies (the figures the speculative planner starts from; cached in the fsgen cache)."""
from __future__ import annotations

import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="measure the verify cost by batch size here and the draft length it implies")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="one model (n-gram drafts): a GGUF path or a pulled model's name")
    which.add_argument("--small", help="System 1 (draft model) of a pair")
    p.add_argument("--large", help="System 2 (the verifier) of a pair")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--n-ctx", type=int, default=4096)
    p.add_argument("--n-batch", type=int, default=512)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def main(args) -> int:
    from ._api import Model, Pair
    from .planner import implied_lengths

    options = dict(n_ctx=args.n_ctx, n_threads=args.threads, n_batch=args.n_batch)
    if args.model:
        if args.large:
            raise SystemExit("fsgen calibrate: --large needs --small, not --model")
        runner, name = Model(args.model, calibrate=True, **options), args.model
    else:
        if not args.large:
            raise SystemExit("fsgen calibrate: --small needs --large")
        runner, name = Pair(args.small, args.large, calibrate=True, **options), args.large
    with runner:
        figures = runner.calibrate()
    calibration = figures["calibration"]
    verify, draft = calibration["verify_seconds"], calibration["draft_seconds"]
    lengths = implied_lengths(verify, draft)
    if args.json:
        print(json.dumps({"verify_seconds": verify, "draft_seconds": draft, "implied": lengths}, indent=2))
        return 0
    single = verify.get(1)
    print(f"verify cost of {name} on this machine (one decode of N rows after ~200 tokens):")
    print("  rows      ms   x one row")
    for rows, seconds in sorted(verify.items()):
        print(f"  {rows:4d} {1e3 * seconds:7.1f}   {seconds / single:5.2f}")
    if draft:
        print(f"a System 1 draft step: {1e3 * draft:.1f} ms ({draft / single:.2f} x a one-row verify)")
    print("draft length the planner picks at a per-token acceptance (expected speed-up over no draft):")
    for row in lengths:
        line = f"  acceptance {row['acceptance']:.2f}: n-gram {row['ngram']:2d} ({row['ngram_speedup']:.2f}x)"
        if row["model"] is not None:
            line += f", System 1 {row['model']:2d} ({row['model_speedup']:.2f}x)"
        print(line)
    print("(cached in the fsgen cache; used by the first drafting call unless FSGEN_CALIBRATE=0)", file=sys.stderr)
    return 0
