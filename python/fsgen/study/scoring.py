"""Scoring: HumanEval pass@1 in a sandboxed subprocess, and simple answer rules for JSONL tasks.

Generated code is never run in the study's own process. :func:`run_program` writes the program
into a temporary directory and starts the scoring driver (``sandbox.py``, ``python -I``) there;
the driver runs the program in a child process with a wall-clock timeout and resource limits
(CPU seconds, address space, file size, no core files) and reports whether ``check(entry_point)``
ran to its end, proven by a random per-run sentinel that the driver generates and the harness
writes only after ``check`` has returned. Exit status 0 alone is never a pass: ``exit()``,
``sys.exit(0)``, ``raise SystemExit`` and ``os._exit(0)`` before ``check`` completes are
failures, as in the official human-eval harness. The program runs as a module named
``candidate`` (not ``__main__``). The driver is a child subreaper: every process the program
spawns, including one that called ``setsid()`` or double-forked, is killed and reaped with the
run (Linux; elsewhere only the program's process group is killed).

Threat model: model replies are untrusted but not adversarial toward the scorer. A reply written
to cheat could read the sentinel from the harness' frame, kill the driver, or define a
``candidate`` whose results compare equal to anything; the aim is that no honest-looking reply
passes without ``check`` completing. Not isolated: the file system outside the temporary
directory (the program runs with the user's permissions) and the network. Run the study as a
user (or in a container) for which that is acceptable.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from . import sandbox

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")

# 1: exit status 0 was a pass (an early exit() passed); 2: check() must run to its end.
SCORER_VERSION = 2
TIMEOUT_S = 10.0
MEMORY_BYTES = 1 << 30        # address space
FILE_BYTES = 16 << 20         # largest file the program may write (stdout/stderr go to files)
DRIVER_GRACE_S = 20.0         # the driver's own start-up and clean-up, on a loaded machine


def extract_code(reply: str) -> str:
    """The first fenced code block of a reply (an unclosed fence runs to the end), else the reply."""
    m = _FENCE.search(reply)
    return m.group(2) if m else reply


def build_program(problem: dict, reply: str) -> str:
    """Problem prompt + the reply's code + the tests (``check`` is called by the harness).

    HumanEval prompts compile on their own (a docstring is a body), so a reply that defines the
    whole function is appended after the prompt and overrides it while keeping the prompt's imports
    and helpers; a reply that is only the body continues the prompt.
    """
    code = extract_code(reply)
    entry = problem["entry_point"]
    prompt = problem["prompt"]
    if re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.M):
        body = prompt + "\n\n" + code
    else:
        lines = code.strip("\n").splitlines()
        if lines and not lines[0][:1].isspace():
            lines = ["    " + ln for ln in lines]
        body = prompt + "\n".join(lines)
    return f"{body}\n\n{problem['test']}\n"


def run_program(source: str, entry: str = "", *, timeout=TIMEOUT_S, memory=MEMORY_BYTES) -> dict:
    """Run ``source`` sandboxed, then ``check(entry)`` when ``entry`` is given.

    Parameters
    ----------
    source : str
        The program (for HumanEval: :func:`build_program`'s output).
    entry : str
        The function ``check`` is called with; "" runs the program only.
    timeout : float
        Wall-clock seconds for the program (its CPU limit is the same, rounded up).
    memory : int
        Address-space limit in bytes.

    Returns
    -------
    dict
        ``{"status": "passed" | "failed" | "timeout" | "crashed", "detail": str}``; passed only
        when the program and ``check`` ran to their end.

    Raises
    ------
    RuntimeError
        When the scoring driver itself could not run (e.g. its file is missing): the reply is
        then not scored at all rather than scored 0.
    """
    with tempfile.TemporaryDirectory(prefix="fsgen-score-") as tmp:
        Path(tmp, "program.py").write_text(source, encoding="utf-8")
        cmd = [sys.executable, "-I", sandbox.__file__, tmp, entry, repr(float(timeout)),
               str(int(timeout) + 1), str(int(memory)), str(FILE_BYTES)]
        driver = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = driver.communicate(timeout=timeout + DRIVER_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.communicate()
            return {"status": "timeout", "detail": f"the scoring driver gave no answer after "
                                                   f"{timeout + DRIVER_GRACE_S:g} s"}
        try:
            res = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            # Not the program's doing (under the threat model): never score it as a failure.
            raise RuntimeError("the scoring driver gave no result: " +
                               err.decode("utf-8", "replace").strip()[-1000:]) from None
        path = os.path.join(tmp, "output.txt")
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 2000))
            tail = f.read().decode("utf-8", "replace").strip()
    rc = res["returncode"]
    if res["status"] == "timeout":
        return {"status": "timeout", "detail": f"no result after {timeout:g} s"}
    if res["status"] == "crashed":
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = "?"
        return {"status": "crashed", "detail": f"signal {-rc} ({name}) {tail[-500:]}"}
    if res["status"] == "passed":
        return {"status": "passed", "detail": ""}
    if rc == 0:
        tail = f"exited with status 0 before check() completed {tail}".strip()
    return {"status": "failed", "detail": tail[-1000:]}


def score_humaneval(problem: dict, reply: str, *, timeout=TIMEOUT_S) -> dict:
    """pass@1 of one reply: ``{"score": 1.0 | 0.0, "status": ..., "detail": ...}``."""
    r = run_program(build_program(problem, reply), problem["entry_point"], timeout=timeout)
    r["score"] = 1.0 if r["status"] == "passed" else 0.0
    return r


def _norm(s: str) -> str:
    return " ".join(s.split()).casefold()


def last_number(s: str):
    nums = _NUMBER.findall(s)
    if not nums:
        return None
    try:
        return float(nums[-1].replace(",", ""))
    except ValueError:
        return None


def score_answer(reply: str, answer: str, rule: str = "exact") -> float:
    """exact: equal after trimming, collapsing whitespace and case-folding; last_number: the last
    number of the reply equals the last number of the answer (commas ignored, |Δ| ≤ 1e-6);
    contains: the answer occurs in the reply (case-folded)."""
    if rule == "exact":
        return float(_norm(reply) == _norm(answer))
    if rule == "last_number":
        got, want = last_number(reply), last_number(answer)
        return float(got is not None and want is not None and abs(got - want) <= 1e-6)
    if rule == "contains":
        return float(_norm(answer) in _norm(reply))
    raise ValueError(f"unknown score rule {rule!r}")


def score_item(item, reply: str) -> dict:
    """{"score": float | None, "status": str, "detail": str} for a task item and a model reply."""
    if item.problem is not None:
        return score_humaneval(item.problem, reply)
    if item.answer is None:
        return {"score": None, "status": "unscored", "detail": ""}
    s = score_answer(reply, item.answer, item.rule or "exact")
    return {"score": s, "status": "passed" if s == 1.0 else "failed", "detail": ""}
