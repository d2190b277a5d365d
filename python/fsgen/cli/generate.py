"""`fsgen generate`: generate text with one model or a pair, streaming to the terminal."""
from __future__ import annotations

import json
import sys

from .._options import param_table
from .flags import add_calibration_argument, add_model_arguments, add_table_flags, check_model_arguments, load_options, table_args

# Flags with their own spelling or handling; every other table parameter becomes --its-name.
_OWN_FLAGS = ("stop", "trace")


def _table_specs() -> list:
    return [spec for spec in param_table() if spec["name"] not in _OWN_FLAGS]


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="generate text with one model or a pair, streaming to the terminal")
    add_model_arguments(p)
    add_table_flags(p, _table_specs())
    p.add_argument("--stop", action="append", default=None, help="a stop string (repeatable)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--n-ctx", type=int, default=4096)
    add_calibration_argument(p)
    p.add_argument("--raw", action="store_true", help="send the prompt as is, without the chat template")
    p.add_argument("--trace", action="store_true", help="print the per-token trace after the text")
    p.add_argument("--stats", action="store_true",
                   help="print the statistics as JSON (and the id of the cost table the call priced from)")
    p.add_argument("prompt")
    p.set_defaults(run=run)


def _announce(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args) -> int:
    from .. import calibration
    from .._api import Model, Pair
    from .render import print_stream, print_trace

    check_model_arguments(args, "generate")
    calibration.on_measure = _announce
    options = dict(n_ctx=args.n_ctx, n_threads=args.threads, **load_options(args))
    if args.model:
        runner = Model(args.model, **options)
        template_model = runner
    else:
        runner = Pair(args.small, args.large, **options)
        template_model = runner.large
    call = table_args(args, _table_specs())
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
            print(json.dumps({**result.stats, "cost_table": result.cost_table}, indent=2))
        else:
            s = result.stats
            extra = ""
            if not args.model:
                extra = f", System 2 wrote {100 * s['system2_fraction']:.1f}% of tokens"
            print(f"[{s['n_tokens']} tokens, {s['tokens_per_second']:.1f} tokens/s, "
                  f"finish: {result.finish_reason}{extra}]", file=sys.stderr)
    return 0
