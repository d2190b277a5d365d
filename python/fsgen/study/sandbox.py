"""The scoring driver: runs one untrusted program and reports whether it ran to its end.

Run as a script (``python -I sandbox.py DIR ENTRY TIMEOUT CPU_S MEMORY FILE_BYTES``, standard
library only) by :func:`fsgen.study.scoring.run_program`; prints one JSON line
``{"status": passed|failed|timeout|crashed, "returncode": int | None, "completed": bool}``.

What it does, and why:

* It generates a random sentinel (``secrets``) that never appears in the program's file. The
  program runs in a child ``python -I -c HARNESS`` that reads the sentinel from its stdin (then
  points stdin at /dev/null), executes ``program.py`` as a module named ``candidate`` (not
  ``__main__``, so a reply's ``if __name__ == "__main__":`` block does not run), calls
  ``check(ENTRY)`` itself, and only then writes the sentinel to a private pipe and leaves with
  ``os._exit(0)``. A pass is "the sentinel came back": exit status 0 alone means nothing, so
  ``exit()``, ``sys.exit(0)``, ``raise SystemExit``, ``os._exit(0)``, a closed stdout or a
  replaced ``print`` before ``check`` has returned all fail (as in the official human-eval
  harness, where SystemExit is a failure).
* It makes itself a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)`` through ctypes, Linux):
  every descendant orphaned during the run — a grandchild that called ``setsid()`` and left the
  process group, a double-forked daemon — is re-parented to this driver instead of init. When
  the program returns or the time is up, the driver SIGKILLs its process group and every
  descendant it finds under /proc, and reaps until it has no child left. ``PR_SET_PDEATHSIG``
  alone would not do: it does not survive a fork. Elsewhere (no prctl, no /proc) only the
  process group is killed.
* Resource limits on the program: CPU seconds, address space, file size, no core files.

Threat model: replies are untrusted but not adversarial toward the scorer. A reply that sets out
to cheat can read the sentinel (it lives in the harness' frame), kill this driver, or write to
anything the user may write; the aim is that no honest-looking reply passes without ``check``
completing. Not isolated: the file system outside the temporary directory (the program runs as
the user, with the user's permissions) and the network.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36

# The program's process. argv: [ENTRY]; stdin: the sentinel; fd RESULT_FD: where it goes.
HARNESS = r"""
import os, sys
def _main(write=os.write, exit=os._exit, stderr=sys.__stderr__):
    # os.write/os._exit are bound here, before the reply runs, so that it cannot replace them.
    fd = int(os.environ.pop("FSGEN_RESULT_FD"))
    os.set_inheritable(fd, False)               # the reply's own subprocesses do not get it
    sentinel = sys.stdin.buffer.readline().strip()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    entry = sys.argv[1]
    with open("program.py", encoding="utf-8") as f:
        code = compile(f.read(), "program.py", "exec")
    ns = {"__name__": "candidate", "__file__": os.path.abspath("program.py"),
          "__builtins__": __builtins__}
    try:
        exec(code, ns)
        if entry:
            ns["check"](ns[entry])
    except SystemExit as e:
        try:
            stderr.write(f"SystemExit({e.code!r}) raised before check() completed\n")
            stderr.flush()
        except Exception:
            pass
        exit(3)
    write(fd, sentinel)
    exit(0)
_main()
"""


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False if unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants(root: int) -> list:
    """Every live process below ``root``, from /proc (empty where /proc is not readable)."""
    children = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for e in entries:
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        ppid = int(stat[stat.rfind(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(e))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_everything(pgid: int, *, rounds: int = 50) -> None:
    """SIGKILL the program's process group and every descendant of this process; reap them all.
    Bounded: a descendant that forks faster than it is killed is chased for ``rounds`` rounds."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for _ in range(rounds):
        for pid in descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return                               # no child left: everything is reaped
        time.sleep(0.01)


def _limits(cpu_s: int, memory: int, file_bytes: int):
    def apply():
        import resource

        os.setpgid(0, 0)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    return apply


def drive(entry: str, timeout: float, cpu_s: int, memory: int, file_bytes: int) -> dict:
    """Run program.py of the current directory under the harness (see the module docstring)."""
    become_subreaper()
    sentinel = secrets.token_hex(16).encode()
    r, w = os.pipe()
    out = open("output.txt", "wb")
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
           "FSGEN_RESULT_FD": str(w)}
    proc = subprocess.Popen([sys.executable, "-I", "-c", HARNESS, entry], env=env,
                            stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                            pass_fds=(w,), preexec_fn=_limits(cpu_s, memory, file_bytes))
    os.close(w)
    out.close()
    try:
        proc.stdin.write(sentinel + b"\n")
        proc.stdin.close()
    except OSError:                              # the program died before reading it
        pass
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        rc = None
    # Read what came back before anything is killed, without blocking: a descendant may hold
    # a copy of the pipe's write end open.
    os.set_blocking(r, False)
    got = b""
    try:
        while len(got) <= len(sentinel):
            chunk = os.read(r, 4096)
            if not chunk:
                break
            got += chunk
    except BlockingIOError:
        pass
    kill_everything(proc.pid)
    os.close(r)
    completed = got == sentinel
    if rc is None:
        status = "timeout"
    elif rc < 0:
        status = "crashed"
    else:
        status = "passed" if rc == 0 and completed else "failed"
    return {"status": status, "returncode": rc, "completed": completed}


def main(argv) -> int:
    directory, entry, timeout, cpu_s, memory, file_bytes = argv
    os.chdir(directory)
    print(json.dumps(drive(entry, float(timeout), int(cpu_s), int(memory), int(file_bytes))),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
