"""The model cache on disk: where it is, its locks and verification stamps, what it holds.

Layout (the directory is :func:`cache_dir`)::

    <cache>/<file>.gguf           a verified model (only ever written by an atomic rename)
    <cache>/<file>.gguf.sha256    stamp written after verification ("<sha256>  <file>", the
                                  format of ``sha256sum``); a later pull trusts it and returns
                                  at once
    <cache>/.locks/<file>.lock    advisory lock held while pulling or removing that model
    <cache>/.logs/<name>.log      the output of the last pull of <name> (pip's output goes here)
    <cache>/.<file>.*.part        a download in progress (removed on failure)
    <cache>/.tmp/<file>/          scratch space of a pull in progress (pip's wheels)
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import pathlib
import shutil
import sys
from typing import Iterator, List, Optional, Union

from ..errors import ModelNotCachedError, ModelNotFoundError, UnknownModelError
from . import registry
from .registry import ModelEntry

PathLike = Union[str, "os.PathLike[str]"]


def cache_dir() -> pathlib.Path:
    """The model cache: ``$FSGEN_CACHE``, else ``$XDG_CACHE_HOME/fsgen``, else ``~/.cache/fsgen``.

    Returns
    -------
    pathlib.Path
        The directory; it is not created here (pulling creates it).
    """
    env = os.environ.get("FSGEN_CACHE")
    if env:
        return pathlib.Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(os.path.expanduser(xdg)):  # XDG: relative values are ignored
        return pathlib.Path(xdg).expanduser() / "fsgen"
    return pathlib.Path.home() / ".cache" / "fsgen"


def root(cache: Optional[PathLike]) -> pathlib.Path:
    """``cache`` if given, else :func:`cache_dir`."""
    return pathlib.Path(cache).expanduser() if cache is not None else cache_dir()


@contextlib.contextmanager
def locked(root: pathlib.Path, filename: str, announce: bool) -> Iterator[None]:
    """Hold the exclusive advisory lock of ``filename`` (other processes pulling it wait)."""
    lockdir = root / ".locks"
    lockdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lockdir / (filename + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            if announce:
                sys.stderr.write(f"waiting for another process pulling {filename} ...\n")
                sys.stderr.flush()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def stamp_path(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + ".sha256")


def is_verified(entry: ModelEntry, path: pathlib.Path) -> bool:
    """Cheap check: file present, right size, and a stamp with the right hash not older than it."""
    try:
        st = path.stat()
        stamp = stamp_path(path)
        sst = stamp.stat()
        text = stamp.read_text()
    except OSError:
        return False
    if entry.size is not None and st.st_size != entry.size:
        return False
    if sst.st_mtime_ns < st.st_mtime_ns:
        return False
    fields = text.split()
    return bool(fields) and fields[0].lower() == entry.sha256.lower()


def write_stamp(path: pathlib.Path, sha256: str) -> None:
    stamp = stamp_path(path)
    tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{sha256}  {path.name}\n")
    os.replace(tmp, stamp)


def unlink(p: pathlib.Path) -> None:
    try:
        p.unlink()
    except FileNotFoundError:
        pass


def remove_partial(root: pathlib.Path, filename: str) -> None:
    """Leftovers of an interrupted pull of ``filename`` (call under its lock)."""
    for stale in root.glob(f".{filename}.*.part"):
        unlink(stale)
    shutil.rmtree(root / ".tmp" / filename, ignore_errors=True)


# ---- what the cache holds ----

def model_path(name: str, cache: Optional[PathLike] = None) -> pathlib.Path:
    """Where the model ``name`` lives (or would live) in the cache."""
    entries = registry.expand(name)
    if len(entries) != 1:
        raise UnknownModelError(f"{name!r} is a group ({' + '.join(registry.GROUPS[name])}), not one model")
    return root(cache) / entries[0].filename


def is_cached(name: str, cache: Optional[PathLike] = None) -> bool:
    """Whether every model of ``name`` (a model or a group) is in the cache."""
    base = root(cache)
    return all((base / e.filename).is_file() for e in registry.expand(name))


@dataclasses.dataclass(frozen=True)
class CachedModel:
    """A model file in the cache. ``name`` is the registry name, or the file name if unknown."""

    name: str
    size: int
    path: pathlib.Path
    known: bool = True
    verified: bool = False


def cached_models(cache: Optional[PathLike] = None) -> List[CachedModel]:
    """What is in the cache: known models (registry order), then other ``.gguf`` files."""
    base = root(cache)
    out: List[CachedModel] = []
    seen = set()
    for entry in registry.REGISTRY.values():
        p = base / entry.filename
        seen.add(entry.filename)
        if p.is_file():
            out.append(CachedModel(entry.name, p.stat().st_size, p, True, is_verified(entry, p)))
    if base.is_dir():
        for p in sorted(base.glob("*.gguf")):
            if p.name not in seen and p.is_file():
                out.append(CachedModel(p.name, p.stat().st_size, p, False, False))
    return out


def remove(name: str, cache: Optional[PathLike] = None) -> List[pathlib.Path]:
    """Delete a cached model (a group removes its members); returns the files deleted.

    ``name`` is a known model or group name, or the file name of another ``.gguf`` in the
    cache. A known model that is not cached is not an error (nothing is deleted).
    """
    base = root(cache)
    try:
        filenames = [e.filename for e in registry.expand(name)]
    except UnknownModelError:
        if os.sep not in name and name.endswith(".gguf") and (base / name).is_file():
            filenames = [name]
        else:
            raise
    removed: List[pathlib.Path] = []
    if not base.is_dir():
        return removed
    for filename in filenames:
        path = base / filename
        with locked(base, filename, announce=False):
            if path.exists():
                unlink(path)
                removed.append(path)
            unlink(stamp_path(path))
            remove_partial(base, filename)
    return removed


def resolve_model(arg: PathLike, cache: Optional[PathLike] = None) -> str:
    """Turn a model argument (a path or a pulled model's name) into a file path.

    Parameters
    ----------
    arg : str or os.PathLike
        An existing path (returned as is) or a known model name.
    cache : str or os.PathLike, optional
        The cache directory (default :func:`cache_dir`).

    Returns
    -------
    str
        The path of the file.

    Raises
    ------
    ModelNotCachedError
        A known name not pulled yet (the message says to run ``fsgen pull NAME``).
    ModelNotFoundError
        Neither a path nor a model name (a ``FileNotFoundError``; the message lists the names).
    """
    s = os.fspath(arg)
    if os.path.exists(s):
        return s
    if s in registry.REGISTRY:
        p = root(cache) / registry.REGISTRY[s].filename
        if p.is_file():
            return str(p)
        raise ModelNotCachedError(f"model {s!r} is not downloaded yet: run `fsgen pull {s}` (cache: {root(cache)})")
    if s in registry.GROUPS:
        raise ModelNotFoundError(
            f"{s!r} names a group of models ({', '.join(registry.GROUPS[s])}); give one model "
            f"(run `fsgen pull {s}` to download them all)"
        )
    raise ModelNotFoundError(f"no such model file: {s!r}; known model names: {registry.known_list()}")
