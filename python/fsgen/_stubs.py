"""Writes python/fsgen/_api.pyi, the type stub of Model and Pair, from the core's parameter table.

    python -m fsgen._stubs --write [PATH]   # regenerate (after changing src/params.cpp)
    python -m fsgen._stubs --check [PATH]   # exit 1 if the committed stub is stale

tests/python/api/test_options_contract.py checks that the stub, the runtime signatures and the table agree.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import _options

HEADER = '''\
# Generated from the core's parameter table (src/params.cpp) by `python -m fsgen._stubs --write`.
# Do not edit by hand: tests/python/api/test_options_contract.py checks that it matches the table.
import os
import pathlib
from typing import Any, Literal, Mapping, Optional, Sequence, Union

from ._results import Chunk as Chunk
from ._results import Drafts as Drafts
from ._results import Result as Result
from ._results import Source as Source
from ._results import Stats as Stats
from ._results import Stream as Stream
from ._results import Trace as Trace

PathLike = Union[str, os.PathLike[str]]
MethodName = {methods}
RouterName = {routers}
System2Name = {system2}

class Model:
    path: pathlib.Path
    def __init__(self, path: PathLike, *, n_ctx: int = 4096, n_threads: Optional[int] = None,
                 n_gpu_layers: Optional[int] = None, n_batch: int = 512, verbose: bool = False,
                 flash_attn: Optional[bool] = None, rpc: Optional[Sequence[str]] = None,
                 rpc_timeout: float = 60.0, calibrate: Union[bool, None, PathLike, Mapping[str, Any]] = None,
                 prompt_cache_mib: int = 256) -> None: ...
    @property
    def info(self) -> dict[str, Any]: ...
    @property
    def planner(self) -> dict[str, Any]: ...
    def calibrate(self, *, cached: bool = False) -> dict[str, Any]: ...
    @property
    def calibration_enabled(self) -> bool: ...
    @property
    def cost_table(self) -> dict[str, Any]: ...
    @property
    def closed(self) -> bool: ...
    def tokenize(self, text: str, *, special: bool = True) -> list[int]: ...
    def detokenize(self, ids: Sequence[int]) -> str: ...
    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], *, add_assistant: bool = True) -> str: ...
{model_methods}
    def validate(self, prompt: Optional[str] = None, *, messages: Optional[Sequence[Mapping[str, Any]]] = None,
                 **options: Any) -> None: ...
    def cancel(self) -> None: ...
    def rpc_stats(self) -> Optional[dict[str, Any]]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Model: ...
    def __exit__(self, *exc: object) -> None: ...

class Pair:
    small: Model
    large: Model
    small_base: Optional[Model]
    def __init__(self, small: Union[PathLike, Model], large: Union[PathLike, Model], *,
                 small_base: Union[PathLike, Model, None] = None, large_rpc: Optional[Sequence[str]] = None,
                 rpc_timeout: float = 60.0, calibrate: Union[bool, None, PathLike, Mapping[str, Any]] = None, **model_options: Any) -> None: ...
    @property
    def planner(self) -> dict[str, Any]: ...
    def calibrate(self, *, cached: bool = False) -> dict[str, Any]: ...
    @property
    def calibration_enabled(self) -> bool: ...
    @property
    def cost_table(self) -> dict[str, Any]: ...
    @property
    def vocab(self) -> dict[str, Any]: ...
    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], *,
                            add_assistant: bool = True) -> dict[str, str]: ...
{pair_methods}
    def validate(self, prompt: Optional[str] = None, *, messages: Optional[Sequence[Mapping[str, Any]]] = None,
                 **options: Any) -> None: ...
    def cancel(self) -> None: ...
    @property
    def large_lost(self) -> bool: ...
    def reload_large(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Pair: ...
    def __exit__(self, *exc: object) -> None: ...
'''


def _literal(names) -> str:
    return "Literal[" + ", ".join(repr(n) for n in names) + "]"


def _methods(for_model: bool) -> str:
    params = ["self", "prompt: Optional[str] = None", "*", "messages: Optional[Sequence[Mapping[str, Any]]] = None"]
    for p in _options.parameters(for_model):
        params.append(f"{p['name']}: {_options.annotation(p)} = {p['default']!r}")
    args = ",\n        ".join(params)
    return "\n".join(f"    def {name}(\n        {args},\n    ) -> {ret}: ..."
                     for name, ret in (("generate", "Result"), ("stream", "Stream")))


def render() -> str:
    """The stub's text for the table this build of the core has."""
    return HEADER.format(methods=_literal(_options.METHOD_NAMES), routers=_literal(_options.ROUTER_NAMES),
                         system2=_literal(_options.SYSTEM2_NAMES), model_methods=_methods(True),
                         pair_methods=_methods(False))


def default_path() -> Path:
    return Path(__file__).with_name("_api.pyi")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fsgen._stubs", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true")
    action.add_argument("--check", action="store_true")
    parser.add_argument("path", nargs="?", type=Path, default=None, help="default: next to this module")
    args = parser.parse_args(argv)
    path = args.path or default_path()
    text = render()
    if args.write:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
        return 0
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        print(f"{path} is stale: run python -m fsgen._stubs --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
