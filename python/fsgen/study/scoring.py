"""Scoring: HumanEval pass@1 in a sandboxed subprocess, and simple answer rules for JSONL tasks.

Generated code is never run in the study's own process: it runs in ``python -I`` in a temporary
directory with a wall-clock timeout and resource limits (address space, CPU seconds, file size,
no core files), in its own process group so that anything it spawns is killed with it.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")

TIMEOUT_S = 10.0
MEMORY_BYTES = 1 << 30        # address space
FILE_BYTES = 16 << 20         # largest file the program may write (stdout/stderr go to files)

# Run as a module other than __main__ (like HumanEval's own exec) so `if __name__ == "__main__":`
# demos in a reply do not run.
_DRIVER = "import runpy; runpy.run_path('program.py', run_name='candidate')"


def extract_code(reply: str) -> str:
    """The first fenced code block of a reply (an unclosed fence runs to the end), else the reply."""
    m = _FENCE.search(reply)
    return m.group(2) if m else reply


def build_program(problem: dict, reply: str) -> str:
    """Problem prompt + the reply's code + tests + ``check(entry_point)``.

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
    return f"{body}\n\n{problem['test']}\n\ncheck({entry})\n"


def _limits(cpu_s: int, memory: int):
    def apply():
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_BYTES, FILE_BYTES))
    return apply


def run_program(source: str, *, timeout=TIMEOUT_S, memory=MEMORY_BYTES) -> dict:
    """Run ``source`` sandboxed; returns {"status": passed|failed|timeout|crashed, "detail": str}."""
    with tempfile.TemporaryDirectory(prefix="fsgen-score-") as tmp:
        Path(tmp, "program.py").write_text(source, encoding="utf-8")
        out = open(os.path.join(tmp, "output.txt"), "wb")
        env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
        proc = subprocess.Popen([sys.executable, "-I", "-c", _DRIVER], cwd=tmp, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                preexec_fn=_limits(int(timeout) + 1, memory))
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)   # the program and anything it spawned
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
            out.close()
        with open(os.path.join(tmp, "output.txt"), "rb") as f:
            f.seek(max(0, os.path.getsize(f.name) - 2000))
            tail = f.read().decode("utf-8", "replace")
    if rc is None:
        return {"status": "timeout", "detail": f"no result after {timeout:g} s"}
    if rc == 0:
        return {"status": "passed", "detail": ""}
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = "?"
        return {"status": "crashed", "detail": f"signal {-rc} ({name}) {tail.strip()[-500:]}"}
    return {"status": "failed", "detail": tail.strip()[-1000:]}


def score_humaneval(problem: dict, reply: str, *, timeout=TIMEOUT_S) -> dict:
    r = run_program(build_program(problem, reply), timeout=timeout)
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
