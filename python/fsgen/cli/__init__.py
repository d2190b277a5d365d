"""The fsgen command: generate, serve, demo, pull, calibrate, models, rpc-server, study.

Each command is a module of this package with ``add_parser(subparsers)``, which registers it and
sets ``run(args) -> exit status`` as its default; the flags several commands share are built in
:mod:`fsgen.cli.flags`.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .. import __version__
from ..errors import FsgenError
from . import calibrate, demo, generate, models, pull, rpc_server, serve


def _add_study(sub) -> None:
    from . import study
    try:
        study.add_parser(sub)
    except ImportError as exc:  # the study's extras are missing
        p = sub.add_parser("study", help="the FS-GEN study (needs: pip install 'fsgen[study]')")
        p.set_defaults(run=study.missing_extras, missing=str(exc))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fsgen", description="A small and a large language model decoding "
                                     "together (fast and slow generating), natively on llama.cpp.")
    parser.add_argument("--version", action="version", version=f"fsgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (generate, serve, demo, pull, calibrate, models, rpc_server):
        command.add_parser(sub)
    _add_study(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    # Without the study's extras its real options are not registered: say what to install
    # rather than "unrecognized arguments: --pair ...".
    if unknown and not getattr(args, "missing", None):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("\n[cancelled]", file=sys.stderr)
        return 130
    except FsgenError as exc:
        print(f"fsgen {args.command}: error: {exc}", file=sys.stderr)
        return 1
