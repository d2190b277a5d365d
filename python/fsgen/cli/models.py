"""`fsgen models [--remove NAME]`: the model cache as a table, or remove a model from it."""
from __future__ import annotations

from .pull import CACHE_HELP


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list cached models")
    p.add_argument("--remove", metavar="NAME")
    p.add_argument("--cache", metavar="DIR", help=CACHE_HELP)
    p.set_defaults(run=run)


def run(args) -> int:
    from .. import hub
    root = args.cache or hub.cache_dir()
    if args.remove:
        removed = hub.remove(args.remove, cache=args.cache)  # an unknown name: main() reports the error
        for path in removed:
            print(f"removed {path}")
        if not removed:
            print(f"{args.remove} is not in the cache ({root})")
        return 0
    models = hub.cached_models(args.cache)
    if models:
        rows = [("NAME", "SIZE", "PATH")] + [
            (m.name, hub.fmt_size(m.size), f"{m.path}{'' if m.verified or not m.known else '  (not verified)'}")
            for m in models]
        widths = [max(len(row[i]) for row in rows) for i in (0, 1)]
        print("\n".join(f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c}".rstrip() for a, b, c in rows))
    else:
        print(f"no models in the cache ({root})")
    missing = [n for n in hub.REGISTRY if n not in {m.name for m in models}]
    if missing:
        groups = "".join(f"; group {g} = {' + '.join(members)}" for g, members in hub.GROUPS.items())
        print(f"\navailable to pull: {', '.join(missing)}{groups}\n(run `fsgen pull NAME`; cache: {root})")
    return 0
