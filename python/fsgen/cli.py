"""The fsgen command: generate, demo, pull, models, study, rpc-server."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Optional, Sequence

from . import __version__
from ._cli_models import add_model_arguments, check_model_arguments, load_options
from .errors import FsgenError

# Flags with their own spelling or handling; every other table parameter becomes --its-name.
_OWN_FLAGS = {"stop", "trace"}


def _add_table_flags(p, *, for_model_only: bool = False) -> None:
    """One flag per generation parameter of the core's table (fsgen.param_table()), defaults
    left to the core: a flag not given is not sent."""
    from ._options import param_table
    for spec in param_table():
        name = spec["name"]
        if name in _OWN_FLAGS or (for_model_only and spec["group"] == "method" and name != "draft"):
            continue
        flag = "--" + name.replace("_", "-")
        kind = spec["type"]
        text = spec["doc"]
        if spec["default"] is not None:
            text += f" (default: {spec['default']})"
        if kind == "choice":
            p.add_argument(flag, choices=spec["choices"], default=None, help=text)
        elif kind == "bool":
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)  # --no-guard
        else:
            p.add_argument(flag, type=int if kind == "int" else float, default=None, help=text)


def _table_args(args) -> dict:
    """The table parameters given on the command line (None: not given)."""
    from ._options import param_table
    return {spec["name"]: getattr(args, spec["name"]) for spec in param_table()
            if spec["name"] not in _OWN_FLAGS and getattr(args, spec["name"], None) is not None}


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="generate text with one model or a pair, streaming to the terminal")
    add_model_arguments(p)
    _add_table_flags(p)
    p.add_argument("--stop", action="append", default=None, help="a stop string (repeatable)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--n-ctx", type=int, default=4096)
    p.add_argument("--raw", action="store_true", help="send the prompt as is, without the chat template")
    p.add_argument("--trace", action="store_true", help="print the per-token trace after the text")
    p.add_argument("--stats", action="store_true", help="print the statistics as JSON")
    p.add_argument("prompt")


def cmd_generate(args) -> int:
    from ._api import Model, Pair
    from .render import print_stream, print_trace

    check_model_arguments(args, "generate")
    options = dict(n_ctx=args.n_ctx, n_threads=args.threads, **load_options(args))
    if args.model:
        runner = Model(args.model, **options)
        template_model = runner
    else:
        runner = Pair(args.small, args.large, **options)
        template_model = runner.large
    call = _table_args(args)
    with runner:
        if args.raw or not template_model.info["chat_template"]:
            prompt = dict(prompt=args.prompt)
        else:
            prompt = dict(messages=[{"role": "user", "content": args.prompt}])
        stream = runner.stream(**prompt, stop=args.stop, trace=args.trace, **call)
        result = print_stream(stream, highlight=not args.model)
        if result is None:
            return 130
        if args.trace and result.trace is not None:
            print_trace(result, template_model)
        if args.stats:
            print(json.dumps(result.stats, indent=2))
        else:
            s = result.stats
            extra = ""
            if not args.model:
                extra = f", System 2 wrote {100 * s['system2_fraction']:.1f}% of tokens"
            print(f"[{s['n_tokens']} tokens, {s['tokens_per_second']:.1f} tokens/s, "
                  f"finish: {result.finish_reason}{extra}]", file=sys.stderr)
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo
    return run_demo(threads=args.threads, max_tokens=args.max_tokens, threshold=args.threshold)


def cmd_pull(args) -> int:
    """`fsgen pull NAME [NAME ...]`: prints each model's path; 1 if any pull failed."""
    from . import hub
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


def cmd_models(args) -> int:
    """`fsgen models [--remove NAME]`: the cache as a table, or remove a model."""
    from . import hub
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="fsgen", description="A small and a large language model decoding "
                                     "together (fast and slow generating), natively on llama.cpp.")
    parser.add_argument("--version", action="version", version=f"fsgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate(sub)
    from .server.cli import add_parser as add_serve, main as serve_main
    add_serve(sub)

    demo = sub.add_parser("demo", help="pull the demo pair and show fast-and-slow decoding")
    demo.add_argument("--threads", type=int, default=None)
    demo.add_argument("--max-tokens", type=int, default=160)
    demo.add_argument("--threshold", type=float, default=None, help="entropy router threshold (nats)")

    pull = sub.add_parser("pull", help="fetch a known model into the cache")
    pull.add_argument("name", nargs="+")
    pull.add_argument("--force", action="store_true")
    pull.add_argument("--quiet", action="store_true")
    pull.add_argument("--cache", metavar="DIR", help="the model cache (default: $FSGEN_CACHE, else the XDG cache)")

    from .calibrate_cli import add_parser as add_calibrate
    add_calibrate(sub)

    models = sub.add_parser("models", help="list cached models")
    models.add_argument("--remove", metavar="NAME")
    models.add_argument("--cache", metavar="DIR", help="the model cache (default: $FSGEN_CACHE, else the XDG cache)")

    from . import rpc_server
    rpc_server.add_parser(sub)

    try:
        from .study.cli import add_parser as add_study
        add_study(sub)
    except ImportError as exc:  # the study's extras are missing
        study = sub.add_parser("study", help="the FS-GEN study (needs: pip install 'fsgen[study]')")
        study.set_defaults(missing=str(exc))

    args, unknown = parser.parse_known_args(argv)
    # Without the study's extras its real options are not registered: say what to install
    # rather than "unrecognized arguments: --pair ...".
    if unknown and not getattr(args, "missing", None):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        if args.command == "generate":
            return cmd_generate(args)
        if args.command == "serve":
            return serve_main(args)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "pull":
            return cmd_pull(args)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "rpc-server":
            from . import rpc_server
            return rpc_server.cmd(args)
        if args.command == "calibrate":
            from .calibrate_cli import main as calibrate_main
            return calibrate_main(args)
        if args.command == "study":
            if getattr(args, "missing", None):
                print(f"fsgen study needs its extras ({args.missing}): pip install 'fsgen[study]'", file=sys.stderr)
                return 2
            from .study.cli import main as study_main
            return study_main(args)
    except KeyboardInterrupt:
        print("\n[cancelled]", file=sys.stderr)
        return 130
    except FsgenError as exc:
        print(f"fsgen {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
