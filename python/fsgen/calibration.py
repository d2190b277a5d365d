"""The cost table: what a verify batch of each size and a System 1 step cost. Each generation's
decisions price from a snapshot of it (never from a clock), and ``Result.cost_table`` names it.

Measured (the default): calibrated once per model file(s), options and machine, cached in the
fsgen cache, refined by each generation's timings for the next one and re-measured between calls
when it drifts. Pinned (``calibrate=<dict or JSON file>`` on Model/Pair, as ``fsgen calibrate
--save`` writes it): used as given, nothing measured or updated. Built-in (``calibrate=False`` or
``FSGEN_CALIBRATE=0``): a fixed table (``fsgen._core.CostTable.builtin``).
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import platform
from typing import Any, Callable, Optional, Sequence, Union

TableSource = Union[bool, None, str, os.PathLike, dict]

CACHE_VERSION = 4  # 4: with System 1's catch-up batch


def table_dict(table: Any) -> dict:
    """A ``_core.CostTable`` as plain values: ``id``, ``kind``, ``verify_seconds`` (rows -> seconds),
    ``draft_seconds`` (one System 1 step, or None), ``sampling_seconds`` (the sampler's cost of
    one row of a sampled generation, or None) and ``catch_up_seconds`` (System 1 reading 16 tokens
    it did not write in one batch, or None)."""
    return {"id": table.id, "kind": table.kind,
            "verify_seconds": {r: s for r, s in enumerate(table.verify) if r >= 1 and s > 0},
            "draft_seconds": table.draft if table.draft > 0 else None,
            "sampling_seconds": table.sampling if table.sampling > 0 else None,
            "catch_up_seconds": table.catch_up if table.catch_up > 0 else None}


def read_table(source: Union[str, os.PathLike, dict]) -> Any:
    """A pinned ``_core.CostTable`` from a dict (as :func:`table_dict` makes) or a JSON file of one.

    Raises
    ------
    InvalidArgumentError
        The file cannot be read, or it is not a cost table.
    """
    from . import _core
    from .errors import InvalidArgumentError
    data = source
    if not isinstance(source, dict):
        try:
            data = json.loads(pathlib.Path(source).read_text())
        except (OSError, ValueError) as e:
            raise InvalidArgumentError(f"cannot read a cost table from {source}: {e}") from None
    try:
        verify = {int(r): float(s) for r, s in data["verify_seconds"].items()}
        draft, sampling = data.get("draft_seconds"), data.get("sampling_seconds")
        catch_up = data.get("catch_up_seconds")
        rows = max(verify) if verify else 0
        if rows < 1 or verify.get(1, 0) <= 0:
            raise ValueError("no one-row verify cost")
        curve = [verify.get(r, -1.0) for r in range(rows + 1)]
        return _core.CostTable(curve, float(draft) if draft else -1.0, "pinned",
                               float(sampling) if sampling else -1.0, float(catch_up) if catch_up else -1.0)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InvalidArgumentError(f"not a cost table (verify_seconds by rows, draft_seconds): {e}") from None


def save_table(table: dict, path: Union[str, os.PathLike]) -> None:
    """Write a cost table (as :func:`table_dict` makes) as JSON, for ``calibrate=<path>``."""
    pathlib.Path(path).write_text(json.dumps(table, indent=2) + "\n")


# Told before each measurement (the command line prints it: the first call otherwise waits silently).
on_measure: Optional[Callable[[str], None]] = None


def enabled(option: TableSource) -> bool:
    """Whether to calibrate: the explicit option, else ``$FSGEN_CALIBRATE`` (default on)."""
    if isinstance(option, (str, os.PathLike, dict)):
        return False  # a pinned table
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


# Verify seconds by rows, a System 1 step, a sampled row, System 1's catch-up batch.
Curve = tuple[list[float], float, float, float]


def load(key: str) -> Optional[Curve]:
    try:
        data = json.loads((_cache_root() / f"{key}.json").read_text())
        return ([float(x) for x in data["verify"]], float(data["draft"]), float(data["sampling"]),
                float(data["catch_up"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(key: str, verify: Sequence[float], draft: float, sampling: float, catch_up: float) -> None:
    root = _cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"verify": list(verify), "draft": draft, "sampling": sampling, "catch_up": catch_up}))
        os.replace(tmp, root / f"{key}.json")
    except OSError:
        pass  # a read-only cache only costs a calibration next time


class Calibrator:
    """Calibrates a Model's or a Pair's core once (from the cache when it can) and again, between
    calls, when the planner reports that observed costs drifted from the calibration; or pins the
    table given as ``option`` (then nothing is measured)."""

    def __init__(self, option: TableSource, files: Sequence[str], options: dict, drafter: bool):
        self.pinned = read_table(option) if isinstance(option, (str, os.PathLike, dict)) else None
        self.enabled = enabled(option)
        self.files = list(files)
        self.options = options
        self.drafter = drafter
        self.done = False
        self.measurements = 0  # calibrations measured (not loaded from the cache)
        # Measure again before a call when the costs drifted. A server turns it off: a measurement
        # there would run inside a request; the measured table follows each generation's timings.
        self.remeasure_on_drift = True

    def attach(self, core: Any) -> None:
        """Give a new core its pinned table, if any."""
        if self.pinned is not None:
            core.set_cost_table(self.pinned)

    def _measure(self, core) -> Curve:
        self.measurements += 1
        if on_measure is not None:
            names = " and ".join(os.path.basename(f) for f in self.files)
            on_measure(f"fsgen: measuring the verify cost curve of {names} on this machine "
                       "(once: the result is cached)")
        return core.calibrate(self.drafter) if self.drafter else core.calibrate()

    def pending(self, core: Any) -> bool:
        """Whether prepare() would measure or load a cost curve now."""
        return self.enabled and (not self.done or (self.remeasure_on_drift and core.planner().drifted))

    def prepare(self, core: Any) -> None:
        """Before a generation that drafts: make sure the planner has a current cost curve."""
        if not self.pending(core):
            return
        key = cache_key(self.files, self.options)
        cached = None if self.done else load(key)  # drifted: measure again
        if cached is not None:
            core.set_calibration(*cached)
        else:
            save(key, *self._measure(core))
        self.done = True

    def run(self, core: Any, cached: bool = False) -> Curve:
        """Measure now (or, with ``cached``, load what the cache holds), store and return (verify
        by rows, draft step, sampled row, catch-up batch)."""
        key = cache_key(self.files, self.options)
        curve = load(key) if cached else None
        if curve is not None:
            core.set_calibration(*curve)
        else:
            curve = self._measure(core)
            save(key, *curve)
        self.done = True
        return curve
