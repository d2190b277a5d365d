"""fsgen's OpenAI-compatible HTTP server (`fsgen serve`); needs the `serve` extra.

`fsgen.server.create_app(...)` gives the ASGI app, to run under any ASGI server or embed.
"""
from __future__ import annotations


def create_app(*args, **kwargs):
    """The ASGI app of `fsgen serve`; see fsgen.server.app.create_app for the parameters."""
    from .app import create_app as _create_app
    return _create_app(*args, **kwargs)


def __getattr__(name):
    if name in ("Defaults",):
        from .protocol import Defaults
        return Defaults
    raise AttributeError(f"module 'fsgen.server' has no attribute {name!r}")


__all__ = ["create_app", "Defaults"]
