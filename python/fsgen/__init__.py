"""fsgen: a small and a large language model decoding together (FS-GEN), natively on llama.cpp."""
from __future__ import annotations

from . import errors
from .errors import (ContextOverflowError, FsgenError, GenerationError, IncompatibleVocabError,
                     InvalidArgumentError, ModelLoadError, TemplateError)
from ._api import Chunk, Drafts, Model, Pair, Result, Source, Stats, Stream, Trace
from ._results import DraftSource
from ._options import method_params, methods, param_table
from . import _core

__version__ = "0.1.0"


def build_info() -> dict:
    """The llama.cpp commit, the ggml backends, and the CPU features compiled in and in use."""
    return _core.build_info()


def pull(name: str, **kwargs):
    """Fetch a known model (or the "demo" pair) into the cache; returns the path(s)."""
    from .hub import pull as _pull
    return _pull(name, **kwargs)


def __getattr__(name):  # fsgen.study imports scipy/matplotlib: only when asked for
    if name == "study":
        import importlib
        return importlib.import_module(".study", __name__)
    raise AttributeError(f"module 'fsgen' has no attribute {name!r}")


__all__ = [
    "Model", "Pair", "Result", "Stream", "Chunk", "Trace", "Drafts", "Source", "DraftSource", "Stats", "build_info",
    "pull",
    "param_table", "methods", "method_params", "__version__",
    "FsgenError", "ModelLoadError", "IncompatibleVocabError", "TemplateError", "ContextOverflowError",
    "GenerationError", "InvalidArgumentError",
]
