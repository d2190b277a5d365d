"""``fsgen calibrate``: measure and print this machine's verify cost curve and the draft lengths
it implies (the figures the speculative planner starts from; cached in the fsgen cache); --save
writes the cost table as JSON, for ``calibrate=FILE`` and ``--calibration FILE``."""
from __future__ import annotations

import json
import sys

from .flags import add_model_arguments, check_model_arguments, load_options


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="measure the verify cost by batch size here and the draft length it implies")
    add_model_arguments(p, small_base=False)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--n-ctx", type=int, default=4096)
    p.add_argument("--n-batch", type=int, default=512)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--save", metavar="FILE", default=None,
                   help="write the cost table as JSON (pin it with --calibration FILE or calibrate=FILE)")
    p.set_defaults(run=run)


def run(args) -> int:
    from .._api import Model, Pair
    from ..calibration import save_table
    from ..planner import implied_lengths

    check_model_arguments(args, "calibrate")
    options = dict(n_ctx=args.n_ctx, n_threads=args.threads, n_batch=args.n_batch, calibrate=True, **load_options(args))
    if args.model:
        runner, name = Model(args.model, **options), args.model
    else:
        runner, name = Pair(args.small, args.large, **options), args.large
    with runner:
        figures = runner.calibrate()
        table = runner.cost_table
    if args.save:
        save_table(table, args.save)
        print(f"cost table {table['id']} written to {args.save}", file=sys.stderr)
    calibration = figures["calibration"]
    verify, draft = calibration["verify_seconds"], calibration["draft_seconds"]
    lengths = implied_lengths(verify, draft)
    if args.json:
        print(json.dumps({"verify_seconds": verify, "draft_seconds": draft,
                          "sampling_seconds": table["sampling_seconds"], "catch_up_seconds": table["catch_up_seconds"],
                          "implied": lengths}, indent=2))
        return 0
    single = verify.get(1)
    where = f"on {', '.join(args.rpc or args.large_rpc)} (RPC)" if (args.rpc or args.large_rpc) else "on this machine"
    print(f"verify cost of {name} {where} (one decode of N rows after ~200 tokens):")
    print("  rows      ms   x one row")
    for rows, seconds in sorted(verify.items()):
        print(f"  {rows:4d} {1e3 * seconds:7.1f}   {seconds / single:5.2f}")
    if draft:
        print(f"a System 1 draft step: {1e3 * draft:.1f} ms ({draft / single:.2f} x a one-row verify)")
    if table["catch_up_seconds"]:
        catch_up = table["catch_up_seconds"]
        print(f"System 1 catching up on 16 tokens in one batch: {1e3 * catch_up:.1f} ms "
              f"({catch_up / single:.2f} x a one-row verify)")
    if table["sampling_seconds"]:
        sampling = table["sampling_seconds"]
        print(f"sampling a row (temperature 1, no truncation): {1e3 * sampling:.2f} ms "
              f"({sampling / single:.3f} x a one-row verify)")
    print("draft length the planner picks at a per-token acceptance (expected speed-up over no draft):")
    for row in lengths:
        line = f"  acceptance {row['acceptance']:.2f}: n-gram {row['ngram']:2d} ({row['ngram_speedup']:.2f}x)"
        if row["model"] is not None:
            line += f", System 1 {row['model']:2d} ({row['model_speedup']:.2f}x)"
        print(line)
    print("(cached in the fsgen cache; used by the first drafting call unless FSGEN_CALIBRATE=0)", file=sys.stderr)
    return 0
