"""Per-generation records, appended to a JSONL file as they are produced.

One line per generated sequence, keyed by (pair, config, prompt_id)::

    {"pair": "small+large", "config": "fs@entropy=0.5", "prompt_id": "HumanEval/0",
     "method": "fs", "params": {"router": "entropy", "threshold": 0.5},
     "small": model, "large": model, "small_base": model | null,
     "n_params_small": int, "n_params_large": int,
     "vocab": {"kind": "shared" | "translated", "overlap": float, "shared_tokens": int},
     "mismatch_definition": "token" | "text",
     "text": str, "finish_reason": str, "stats": {...Result.stats...},
     "score": float | null, "score_status": str, "score_detail": str, "scorer": int,
     "max_tokens": int,
     "trace": {"token": [...], "source": [...], "entropy": [...], "top1": [...], "margin": [...],
               "system2_called": [...], "mismatch": [...], "text_offset": [...], "piece": [...]},
     "drafts": {"length": [...], "accepted": [...]},
     "error": str (only when generation failed; such a record has no text/trace),
     "skipped": str (only when the pair cannot run the config: why; no text/trace),
     "time": ISO 8601}

``vocab`` is the pair's vocabulary relation (Pair.vocab) and ``mismatch_definition`` how its
mismatches are counted: "token" (one vocabulary: System 2's token against System 1's greedy one)
or "text" (a translated pair: System 2's next token against System 1's greedy text at the same
position, as bytes up to the shorter of the two). Records made before they were recorded lack
both (those pairs shared a vocabulary). A translated pair cannot run contrastive or proxy: each
such config is recorded as ``skipped`` once per prompt, so a resumed study does not retry it.

A model is identified by ``{"file": file name, "size": bytes, "sha256": hex digest}``, never by
its path on the machine that ran the study. ``scorer`` is the version of the HumanEval scorer
(scoring.SCORER_VERSION; absent in records scored before version 2, which counted any exit
status 0 as a pass). Trace columns are lists of one length (one entry per generated token); ``piece`` is the token's
text. A run that was interrupted resumes by skipping the keys already in the file; a truncated
last line (a write cut short) is dropped and its generation redone.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

TRACE_COLUMNS = ("token", "source", "entropy", "top1", "margin", "system2_called", "mismatch",
                 "text_offset")
DRAFT_COLUMNS = ("length", "accepted")


def model_identity(path) -> dict:
    """``{"file": name, "size": bytes, "sha256": hex}`` of a model file: what records store
    instead of its absolute path (which would leak the user's directories and mean nothing on
    another machine)."""
    path = Path(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return {"file": path.name, "size": path.stat().st_size, "sha256": h.hexdigest()}


def model_label(model) -> str:
    """A model of a record as text: its file name (older records hold a path: its last part)."""
    if isinstance(model, dict):
        return model.get("file", "?")
    return Path(str(model)).name if model else "–"


def key(rec: dict) -> tuple:
    return (rec["pair"], rec["config"], rec["prompt_id"])


def _column(values) -> list:
    a = np.asarray(values)
    if a.dtype.kind == "f":
        return [None if not np.isfinite(v) else v for v in np.round(a.astype(float), 6).tolist()]
    return a.tolist()


def trace_columns(trace) -> dict:
    """An fsgen trace object (attributes are numpy arrays) as a dict of JSON-ready lists."""
    if trace is None:
        return {}
    return {c: _column(getattr(trace, c)) for c in TRACE_COLUMNS if hasattr(trace, c)}


def draft_columns(trace) -> dict:
    drafts = getattr(trace, "drafts", None)
    if drafts is None:
        return {}
    get = drafts.get if isinstance(drafts, dict) else (lambda c: getattr(drafts, c, None))
    return {c: _column(get(c)) for c in DRAFT_COLUMNS if get(c) is not None}


def pieces_from_offsets(text: str, offsets) -> list:
    """Each token's text from the character offsets of the tokens in ``text``."""
    offs = [int(o) for o in offsets]
    ends = offs[1:] + [len(text)]
    return [text[a:max(a, b)] for a, b in zip(offs, ends)]


def read_records(path) -> list:
    """All complete records of a file (a later record with the same key replaces an earlier one)."""
    path = Path(path)
    if not path.exists():
        return []
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # a truncated last line
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                out[key(rec)] = rec
    return list(out.values())


class RecordStore:
    """Append-only JSONL store; ``key in store`` tells whether a generation is already done."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self._keys = {key(r) for r in read_records(self.path)}

    def _repair(self):
        """Cut a truncated last line so that appends start on a fresh line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            with open(self.path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def __contains__(self, k) -> bool:
        return tuple(k) in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def append(self, rec: dict):
        line = json.dumps(rec, ensure_ascii=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self._keys.add(key(rec))

    def records(self) -> list:
        return read_records(self.path)
