"""Verify-cost calibration: what a verify batch of each size costs on this machine, measured once
per model file(s), options and machine, cached in the fsgen cache, re-measured when it drifts.

``FSGEN_CALIBRATE=0`` (or ``calibrate=False`` on Model/Pair) turns it off: the planner then learns
costs while generating, starting from a prior (tests and cold timings use that).
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import platform
from typing import Any, Callable, Optional, Sequence

CACHE_VERSION = 2  # 2: fastest of 3 samples per size (was the median of 2)


# Told before each measurement (the command line prints it: the first call otherwise waits silently).
on_measure: Optional[Callable[[str], None]] = None


def enabled(option: Optional[bool]) -> bool:
    """Whether to calibrate: the explicit option, else ``$FSGEN_CALIBRATE`` (default on)."""
    if option is not None:
        return bool(option)
    return os.environ.get("FSGEN_CALIBRATE", "1").strip().lower() not in ("0", "false", "no", "off")


def _cache_root() -> pathlib.Path:
    from .hub import cache_dir
    return pathlib.Path(cache_dir()) / "calibration"


def cache_key(files: Sequence[str], options: dict) -> str:
    """A key for one model file set, its context options and this machine and build."""
    from . import _core
    build = _core.build_info()
    stats = []
    for f in files:
        st = os.stat(f)
        stats.append([os.path.realpath(f), st.st_size, st.st_mtime_ns])
    identity = {
        "version": CACHE_VERSION, "files": stats, "options": options,
        "machine": [platform.node(), platform.machine(), os.cpu_count()],
        "build": [build.get("version"), build.get("llama_cpp_commit"), build.get("backends"),
                  build.get("cpu_features")],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]


def load(key: str) -> Optional[tuple[list[float], float]]:
    try:
        data = json.loads((_cache_root() / f"{key}.json").read_text())
        return [float(x) for x in data["verify"]], float(data["draft"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(key: str, verify: Sequence[float], draft: float) -> None:
    root = _cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"verify": list(verify), "draft": draft}))
        os.replace(tmp, root / f"{key}.json")
    except OSError:
        pass  # a read-only cache only costs a calibration next time


class Calibrator:
    """Calibrates a Model's or a Pair's core once (from the cache when it can) and again when the
    planner reports that observed costs drifted from the calibration."""

    def __init__(self, option: Optional[bool], files: Sequence[str], options: dict, drafter: bool):
        self.enabled = enabled(option)
        self.files = list(files)
        self.options = options
        self.drafter = drafter
        self.done = False
        self.measurements = 0  # calibrations measured (not loaded from the cache)

    def _measure(self, core) -> tuple[list[float], float]:
        self.measurements += 1
        if on_measure is not None:
            names = " and ".join(os.path.basename(f) for f in self.files)
            on_measure(f"fsgen: measuring the verify cost curve of {names} on this machine "
                       "(once: the result is cached)")
        return core.calibrate(self.drafter) if self.drafter else core.calibrate()

    def pending(self, core: Any) -> bool:
        """Whether prepare() would measure or load a cost curve now."""
        return self.enabled and (not self.done or core.planner().drifted)

    def prepare(self, core: Any) -> None:
        """Before a generation that drafts: make sure the planner has a current cost curve."""
        if not self.enabled:
            return
        if self.done and not core.planner().drifted:
            return
        key = cache_key(self.files, self.options)
        cached = None if self.done else load(key)  # drifted: measure again
        if cached is not None:
            core.set_calibration(*cached)
        else:
            save(key, *self._measure(core))
        self.done = True

    def run(self, core: Any, cached: bool = False) -> tuple[list[float], float]:
        """Measure now (or, with ``cached``, load what the cache holds), store and return (verify
        by rows, draft step)."""
        key = cache_key(self.files, self.options)
        stored = load(key) if cached else None
        if stored is not None:
            core.set_calibration(*stored)
            verify, draft = stored
        else:
            verify, draft = self._measure(core)
            save(key, verify, draft)
        self.done = True
        return verify, draft
