"""The HumanEval scorer's sandbox: a pass means check(entry_point) ran to its end, and nothing the
program spawned outlives the run."""
import os
import signal
import textwrap
import time

import pytest

from fsgen.study import scoring   # standard library only: no study extra needed

PROBLEM = {
    "task_id": "Test/0",
    "prompt": 'def total(xs):\n    """Sum."""\n',
    "entry_point": "total",
    "test": "def check(candidate):\n    assert candidate([1, 2, 3]) == 6\n"
            "    assert candidate([]) == 0\n",
}
RIGHT = "def total(xs):\n    return sum(xs)\n"
WRONG = "def total(xs):\n    return len(xs)\n"


def score(code, **kw):
    return scoring.score_humaneval(PROBLEM, f"```python\n{textwrap.dedent(code)}```", **kw)


# Wrong answers followed by a way to end the program (or hide the failure) before check
# completes: every one must fail (a scorer that takes exit status 0 as a pass lets most through).
EARLY_EXITS = {
    "exit": WRONG + "exit()\n",
    "quit": WRONG + "quit()\n",
    "sys_exit_0": WRONG + "import sys\nsys.exit(0)\n",
    "os_exit_0": WRONG + "import os\nos._exit(0)\n",
    "raise_systemexit": WRONG + "raise SystemExit\n",
    "systemexit_inside_candidate": "import sys\ndef total(xs):\n    sys.exit(0)\n",
    "os_exit_inside_candidate": "import os\ndef total(xs):\n    os._exit(0)\n",
    "atexit_os_exit": WRONG + "import atexit, os\natexit.register(os._exit, 0)\n",
    "excepthook_then_atexit": WRONG + "import sys, atexit, os\n"
                              "sys.excepthook = lambda *a: None\natexit.register(os._exit, 0)\n",
    "redefine_check": WRONG + "def check(candidate):\n    pass\n",
    "builtins_check": WRONG + "import builtins\nbuiltins.check = lambda c: None\n",
    "redefine_assertionerror": WRONG + "class AssertionError(Exception):\n    pass\n"
                               "import builtins\nbuiltins.AssertionError = Warning\n",
    "replace_print_and_stdout": WRONG + "import builtins, sys, io\n"
                                "builtins.print = lambda *a, **k: None\nsys.stdout = io.StringIO()\n",
    "patch_os_exit_and_write": WRONG + "import os\nos._exit = lambda c: None\n"
                               "os.write = lambda fd, b: len(b)\n",
    "close_stdio": WRONG + "import os\nos.close(1)\nos.close(2)\n",
}


@pytest.mark.parametrize("name", list(EARLY_EXITS))
def test_no_pass_without_check_completing(name):
    r = score(EARLY_EXITS[name])
    assert r["score"] == 0.0 and r["status"] == "failed", (name, r)


def test_main_block_that_exits():
    main_exit = '\nif __name__ == "__main__":\n    import sys\n    sys.exit(0)\n'
    assert score(WRONG + main_exit)["score"] == 0.0
    assert score(RIGHT + main_exit)["score"] == 1.0      # the block does not run at all


def test_honest_replies():
    assert score(RIGHT)["status"] == "passed"
    assert score(RIGHT + "print('a demo line')\n")["status"] == "passed"
    r = score(WRONG)
    assert r["status"] == "failed" and "AssertionError" in r["detail"]
    r = score("def total(xs):\n    return sum(xs\n")
    assert r["status"] == "failed" and "SyntaxError" in r["detail"]


def test_harness_does_not_depend_on_what_the_reply_can_patch():
    assert score(RIGHT + EARLY_EXITS["patch_os_exit_and_write"][len(WRONG):])["score"] == 1.0
    assert score(RIGHT + EARLY_EXITS["replace_print_and_stdout"][len(WRONG):])["score"] == 1.0


def test_exit_detail_names_the_cause():
    assert "SystemExit(0)" in score(EARLY_EXITS["sys_exit_0"])["detail"]
    assert "before check() completed" in score(EARLY_EXITS["os_exit_0"])["detail"]


def _alive(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read()
    except OSError:
        return False


def _assert_gone(pidfile):
    deadline = time.monotonic() + 1.0
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pidfile.exists(), "the program did not start its grandchild"
    pid = int(pidfile.read_text())
    try:
        deadline = time.monotonic() + 3.0           # bounded: the run is over already
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"grandchild {pid} survived the run"
    finally:
        if _alive(pid):                             # our own escaped grandchild: clean up
            os.kill(pid, signal.SIGKILL)


def test_setsid_grandchild_dies_on_timeout(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    code = f"""
        import subprocess, sys
        def total(xs):
            p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 start_new_session=True)
            open({str(pidfile)!r}, "w").write(str(p.pid))
            while True:
                pass
    """
    assert score(code, timeout=2)["status"] == "timeout"
    _assert_gone(pidfile)


def test_double_forked_daemon_dies_with_a_passing_run(tmp_path):
    pidfile = tmp_path / "daemon.pid"
    code = f"""
        import os, time
        def total(xs):
            if not os.path.exists({str(pidfile)!r}) and os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    open({str(pidfile)!r} + ".tmp", "w").write(str(os.getpid()))
                    os.rename({str(pidfile)!r} + ".tmp", {str(pidfile)!r})
                    time.sleep(60)
                os._exit(0)
            while not os.path.exists({str(pidfile)!r}):
                time.sleep(0.01)
            return sum(xs)
    """
    assert score(code)["status"] == "passed"
    _assert_gone(pidfile)


def test_a_driver_that_cannot_run_is_an_error_not_a_failed_reply(monkeypatch, tmp_path):
    class Missing:
        __file__ = str(tmp_path / "no-such-driver.py")

    monkeypatch.setattr(scoring, "sandbox", Missing)
    with pytest.raises(RuntimeError, match="scoring driver gave no result"):
        score(RIGHT)
