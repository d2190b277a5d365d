"""`fsgen pull NAME [NAME ...]`: fetch known models into the cache and print their paths."""
from __future__ import annotations

import sys
import time

CACHE_HELP = "the model cache (default: $FSGEN_CACHE, else the XDG cache)"


def add_parser(sub) -> None:
    p = sub.add_parser("pull", help="fetch a known model into the cache")
    p.add_argument("name", nargs="+")
    p.add_argument("--force", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--cache", metavar="DIR", help=CACHE_HELP)
    p.set_defaults(run=run)


def run(args) -> int:
    """Prints each model's path; 1 if any pull failed."""
    from .. import hub
    status = 0
    for name in args.name:
        t0 = time.monotonic()
        try:
            paths = hub.pull(name, cache=args.cache, progress=not args.quiet, force=args.force)
        except hub.PullError as exc:
            print(f"fsgen pull: error: {exc}", file=sys.stderr)
            status = 1
            continue
        for path in paths:
            print(path)
        if not args.quiet:
            print(f"{name}: ready ({time.monotonic() - t0:.1f} s)", file=sys.stderr)
    return status
