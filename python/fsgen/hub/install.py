"""Pulling a model into the cache: fetch from a source, verify, install by an atomic rename.

The final path only ever holds a verified file: the bytes go to a temporary file in the cache
directory, are hashed and counted as they are written, and the file is renamed into place only
once its size and SHA-256 match the registry. A lock per file makes concurrent pulls of one
model fetch it once.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import sys
import tempfile
from typing import IO, Any, BinaryIO, List, Optional, Tuple

from ..errors import PullError
from . import cache as _cache
from . import registry
from .progress import Progress
from .cache import PathLike
from .registry import ModelEntry
from .sources import COPY_CHUNK, sources_for


def pull(name: str, *, cache: Optional[PathLike] = None, progress: Any = True,
         force: bool = False) -> List[pathlib.Path]:
    """Download, verify and cache a known model (or each model of a group).

    Parameters
    ----------
    name : str
        A model name or a group name (:func:`fsgen.hub.known_names`).
    cache : str or os.PathLike, optional
        The cache directory (default :func:`fsgen.hub.cache_dir`).
    progress : bool or callable
        True: a tqdm bar if tqdm is installed, else a line on stderr; False: silent; a callable
        ``f(done_bytes, total_bytes, text)`` gets every update.
    force : bool
        Download again even if a verified file is cached.

    Returns
    -------
    list of pathlib.Path
        One path per model; for the group ``demo``, ``[small, large]``.

    Raises
    ------
    UnknownModelError
        ``name`` is not known (the message lists the known names).
    PullError
        No source delivered a file of the right size and SHA-256 (the message lists each
        source's failure and where the full log is).
    """
    entries = registry.expand(name)
    base = _cache.root(cache)
    return [_pull_one(e, base, progress, force) for e in entries]


def _pull_one(entry: ModelEntry, root: pathlib.Path, progress: Any, force: bool) -> pathlib.Path:
    final = root / entry.filename
    if not force and _cache.is_verified(entry, final):  # fast path, no lock needed
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _cache.locked(root, entry.filename, announce=bool(progress) and not callable(progress)):
        if not force and _cache.is_verified(entry, final):  # another process finished it meanwhile
            return final
        _cache.remove_partial(root, entry.filename)  # an interrupted pull's (nobody else writes them now)
        if final.exists() and not force and _verify_existing(entry, final, progress):
            return final
        logdir = root / ".logs"
        logdir.mkdir(exist_ok=True)
        workdir = root / ".tmp" / entry.filename  # scratch space for sources (pip wheels)
        workdir.mkdir(parents=True, exist_ok=True)
        errors: List[str] = []
        try:
            with open(logdir / f"{entry.name}.log", "w", encoding="utf-8") as log:
                for source in sources_for(entry):
                    try:
                        _fetch_into(entry, source, root, final, progress, log, workdir)
                        return final
                    except Exception as e:  # try the next source
                        errors.append(f"{source.describe()}: {e}")
                        log.write(f"[fsgen] failed: {errors[-1]}\n")
                        log.flush()
        finally:
            for d in (workdir, workdir.parent):  # only removed when empty
                try:
                    d.rmdir()
                except OSError:
                    pass
        details = "\n  ".join(errors) or "no sources"
        raise PullError(
            f"could not pull {entry.name} ({entry.filename}):\n  {details}\n"
            f"(full log: {logdir / (entry.name + '.log')})"
        )


def _hash_file(path: pathlib.Path, progress: Progress) -> Tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(COPY_CHUNK)
            if not b:
                break
            h.update(b)
            n += len(b)
            progress.update(len(b))
    return h.hexdigest(), n


def _verify_existing(entry: ModelEntry, final: pathlib.Path, progress: Any) -> bool:
    """A file at the final path without a valid stamp: hash it once; drop it if wrong."""
    size = final.stat().st_size
    ok = False
    if entry.size is None or size == entry.size:
        bar = Progress(f"verify {entry.name}", size, progress)
        try:
            digest, _ = _hash_file(final, bar)
        finally:
            bar.close()
        ok = digest == entry.sha256.lower()
    if ok:
        _cache.write_stamp(final, entry.sha256.lower())
        return True
    if progress and not callable(progress):
        sys.stderr.write(f"{final} does not match {entry.name}'s checksum; downloading it again\n")
    _cache.unlink(_cache.stamp_path(final))
    _cache.unlink(final)
    return False


class _HashingWriter:
    """Binary file wrapper that hashes and counts what is written, and reports progress."""

    def __init__(self, f: BinaryIO, progress: Progress, limit: Optional[int]):
        self._f = f
        self.hash = hashlib.sha256()
        self.size = 0
        self._progress = progress
        self._limit = limit

    def write(self, data: bytes) -> int:
        n = len(data)
        if self._limit is not None and self.size + n > self._limit:
            raise PullError(f"source delivered more than the expected {self._limit} bytes")
        self._f.write(data)
        self.hash.update(data)
        self.size += n
        self._progress.update(n)
        return n

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._f.flush()


def _fetch_into(entry: ModelEntry, source: Any, root: pathlib.Path, final: pathlib.Path, progress: Any,
                log: IO[str], workdir: pathlib.Path) -> None:
    fd, tmpname = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".part", dir=root)
    tmp = pathlib.Path(tmpname)
    os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a cached model is meant to be shared
    bar = Progress(f"pull {entry.name}", entry.size, progress, log, workdir)
    done = False
    try:
        with os.fdopen(fd, "wb") as f:
            writer = _HashingWriter(f, bar, entry.size)
            log.write(f"[fsgen] {entry.name}: fetching from {source.describe()}\n")
            log.flush()
            source.fetch(writer, bar)
            f.flush()
            os.fsync(f.fileno())
        if entry.size is not None and writer.size != entry.size:
            raise PullError(f"size mismatch: got {writer.size} bytes, expected {entry.size}")
        digest = writer.hash.hexdigest()
        if digest != entry.sha256.lower():
            raise PullError(f"SHA-256 mismatch: got {digest}, expected {entry.sha256.lower()}")
        os.replace(tmp, final)
        done = True
        _cache.write_stamp(final, digest)
        _fsync_dir(root)
        log.write(f"[fsgen] {entry.name}: verified, {writer.size} bytes -> {final}\n")
    finally:
        bar.close()
        if not done:
            _cache.unlink(tmp)


def _fsync_dir(d: pathlib.Path) -> None:
    """Make the rename durable (a crash right after a pull must not lose the file)."""
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems (network mounts) refuse fsync on a directory
        pass
    finally:
        os.close(fd)
