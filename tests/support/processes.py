"""Child processes of the tests (and benchmarks): the environment that makes a child import the
same fsgen as this process, the fsgen command line in a child, a free loopback port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import fsgen

PYTHON_DIR = Path(fsgen.__file__).resolve().parent.parent  # where this process imports fsgen from


def child_env(**extra: str) -> dict:
    """The environment of a child process that must import the same fsgen as this one (installed
    or a source tree), without colour in its output; ``extra`` adds or replaces variables."""
    path = os.pathsep.join(p for p in (str(PYTHON_DIR), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path, NO_COLOR="1")
    env.update(extra)
    return env


def run_cli(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m fsgen.cli ARGS` in a child process, its output as text."""
    return subprocess.run([sys.executable, "-m", "fsgen.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=child_env(), stdin=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
