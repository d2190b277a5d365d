"""Progress of a pull or a verification: a tqdm bar, a stderr line, a callback, or nothing."""
from __future__ import annotations

import pathlib
import sys
import time
from typing import IO, Any, Callable, Optional


def fmt_size(n: Optional[float]) -> str:
    """A byte count for people: ``491.4 MB``, ``1.12 GB``."""
    if n is None:
        return "?"
    if n >= 1e9:
        return f"{n / 1e9:.2f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.1f} kB"
    return f"{int(n)} B"


class Progress:
    """What a source sees as ``progress``: ``describe(text)``, ``update(n)``, ``log``, ``workdir``.

    ``enabled`` may be True (tqdm if importable, else a simple stderr line), False (silent) or
    a callable ``f(done_bytes, total_bytes_or_None, text)`` for embedding applications.
    """

    def __init__(self, label: str, total: Optional[int], enabled: Any, log: Optional[IO[str]] = None,
                 workdir: Optional[pathlib.Path] = None):
        self.label = label
        self.total = total
        self.done = 0
        self.text = ""
        self.log = log
        self.workdir = workdir  # where sources may put scratch files (pip's wheels)
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
            try:  # tqdm comes with the study extra; a plain line otherwise
                from tqdm import tqdm
            except ImportError:
                if not self._tty:
                    sys.stderr.write(f"{label}: downloading {fmt_size(total)}\n")
                    sys.stderr.flush()
            else:
                self._bar = tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1000,
                                 file=sys.stderr, mininterval=0.2 if self._tty else 10.0, dynamic_ncols=True,
                                 leave=True)

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
            f"\r{self.label}: {fmt_size(self.done)}/{fmt_size(self.total)}{pct} "
            f"{fmt_size(self.done / elapsed)}/s {self.text}\x1b[K{end}"
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
                sys.stderr.write(f"{self.label}: {fmt_size(self.done)} done\n")
                sys.stderr.flush()
            self._enabled = False
