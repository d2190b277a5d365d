"""Which fsgen fields a request may carry, and which methods exist: read from the core's table.

This is the one place the server learns parameter and method names. With `fsgen.param_table()`
and `fsgen.methods()` (the shared options contract) it reads them from the core; on a build
without them it falls back to the Python API's own table (`fsgen._api.METHOD_PARAMS`).
"""
from __future__ import annotations

from typing import Any, Optional

import fsgen

# Sampling fields: they always apply, whatever the method (the contract says so).
SAMPLING = ("temperature", "top_k", "top_p", "min_p", "seed")


def _table() -> Optional[list]:
    table = getattr(fsgen, "param_table", None)
    return table() if callable(table) else None


def methods() -> list[str]:
    """Every method a Pair accepts, in the core's order."""
    listed = getattr(fsgen, "methods", None)
    if callable(listed):
        return [m["name"] if isinstance(m, dict) else str(m) for m in listed()]
    from .._api import METHOD_PARAMS
    return list(METHOD_PARAMS)


def method_params() -> dict[str, dict[str, Any]]:
    """name -> {"type": python type name or None, "default": ..., "choices": [...] or None, "doc": str}
    for every method parameter (not the sampling ones, not max_tokens/stop/trace)."""
    table = _table()
    out: dict[str, dict[str, Any]] = {}
    if table is not None:
        for row in table:
            name = row["name"]
            if name in SAMPLING or name in ("max_tokens", "stop", "trace", "method", "prompt", "messages"):
                continue
            out[name] = dict(type=row.get("type"), default=row.get("default"), choices=row.get("choices"),
                             doc=row.get("doc", ""))
        return out
    from .._api import METHOD_PARAMS
    for params in METHOD_PARAMS.values():
        for name, default in params.items():
            out.setdefault(name, dict(type=None, default=default, choices=None, doc=""))
    return out


def request_fields() -> tuple[str, ...]:
    """fsgen's own per-request fields: method, every method parameter, and the sampling fields
    OpenAI lacks (top_k, min_p)."""
    return ("method", *method_params(), "top_k", "min_p")


def applies(name: str, method: str) -> bool:
    """Whether a method option given on the command line should go with a request for `method`.

    Only used for the server's command-line defaults: what a request sends itself goes to the
    core as is, which says which parameters apply.
    """
    table = _table()
    if table is not None:
        for row in table:
            if row["name"] == name:
                where = row.get("methods") or row.get("applies_to") or row.get("applies")
                if isinstance(where, (list, tuple)):
                    return method in where
                break
        else:
            return False
    from .._api import METHOD_PARAMS
    return name in METHOD_PARAMS.get(method, {})
