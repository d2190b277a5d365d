"""The flags several commands share, built in one place.

- Generation parameters: one flag per row of the core's table (``fsgen.param_table()``), for
  `fsgen generate` (every parameter it does not spell its own way) and `fsgen serve` (the method
  parameters, as defaults for requests).
- Model arguments: one model (--model, optionally on RPC servers with --rpc) or a pair
  (--small/--large, System 2 optionally on RPC servers with --large-rpc), for `fsgen generate`,
  `fsgen serve` and `fsgen calibrate`, checked the same way by each.
"""
from __future__ import annotations

import argparse
from typing import Iterable

_TYPES = {"int": int, "float": float}


def add_table_flags(parser, specs: Iterable[dict]) -> None:
    """One flag per parameter row (``--draft-max``, ``--guard/--no-guard``), with its choices, type
    and documentation; defaults are left to the core: a flag not given is not sent."""
    for spec in specs:
        name, kind = spec["name"], spec["type"]
        text = spec["doc"] + (f" (default: {spec['default']})" if spec["default"] is not None else "")
        kwargs = dict(default=None, dest=name, help=text)
        if kind == "choice":
            kwargs["choices"] = spec["choices"]
        elif kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs.update(type=_TYPES.get(kind, str), metavar=name.upper())
        parser.add_argument("--" + name.replace("_", "-"), **kwargs)


def table_args(args, specs: Iterable[dict]) -> dict:
    """The parameters of these rows given on the command line (None: not given)."""
    given = {spec["name"]: getattr(args, spec["name"], None) for spec in specs}
    return {name: value for name, value in given.items() if value is not None}


def add_model_arguments(p, *, small_base: bool = True) -> None:
    """--model | --small (one required), --large, --small-base, --rpc, --large-rpc, --rpc-timeout."""
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="one model: a GGUF path or a pulled model's name")
    which.add_argument("--small", help="System 1: the small model (path or name)")
    p.add_argument("--large", help="System 2: the large model (path or name)")
    if small_base:
        p.add_argument("--small-base", help="the small model's base, for method proxy")
    p.add_argument("--rpc", action="append", metavar="HOST:PORT",
                   help="--model: run the model on this `fsgen rpc-server` (repeat for several)")
    p.add_argument("--large-rpc", action="append", metavar="HOST:PORT",
                   help="run System 2 (the large model) on this `fsgen rpc-server` (repeat for several)")
    p.add_argument("--rpc-timeout", type=float, default=None,
                   help="seconds any call to a model on RPC servers may take (default 60)")


def add_calibration_argument(p) -> None:
    """--calibration FILE: a cost table saved by `fsgen calibrate --save`, pinned (Model/Pair's calibrate=)."""
    p.add_argument("--calibration", metavar="FILE", default=None,
                   help="price drafts and fs's guard from this cost table (`fsgen calibrate --save FILE`): "
                        "nothing is measured, and the same table gives the same text")


def check_model_arguments(args, command: str) -> None:
    """Raises SystemExit with a message naming `fsgen COMMAND` for a combination that makes no sense."""
    def fail(message: str):
        raise SystemExit(f"fsgen {command}: {message}")

    if args.model:
        if args.large or getattr(args, "small_base", None):
            fail("--large/--small-base need --small, not --model")
        if getattr(args, "method", None) is not None:
            fail(f"--method {args.method} needs a pair (--small S --large L)")
        if args.large_rpc:
            fail("--large-rpc needs a pair (--small S --large L); use --rpc with --model")
    else:
        if not args.large:
            fail("--small needs --large")
        if args.rpc:
            fail("with a pair, --large-rpc puts System 2 on a server (--rpc is for --model)")


def load_options(args) -> dict:
    """Keywords for fsgen.Model (one model) or fsgen.Pair (a pair) from the RPC arguments and
    --calibration; the small_base of a pair too."""
    options = {} if args.rpc_timeout is None else {"rpc_timeout": args.rpc_timeout}
    if getattr(args, "calibration", None):
        options["calibrate"] = args.calibration
    if args.model:
        return dict(options, rpc=args.rpc) if args.rpc else options
    if getattr(args, "small_base", None):
        options["small_base"] = args.small_base
    return dict(options, large_rpc=args.large_rpc) if args.large_rpc else options
