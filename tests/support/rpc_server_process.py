"""`fsgen rpc-server` in a subprocess on a free loopback port (tests and benchmarks/rpc_bench.py)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from processes import child_env, free_port


class RpcServer:
    """Starts the server and waits until it listens; kill() ends it, stderr() is what it printed."""

    def __init__(self, port: Optional[int] = None, threads: int = 1, cache: Optional[Path] = None,
                 timeout: float = 30.0):
        self.port = port or free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        command = [sys.executable, "-m", "fsgen.cli", "rpc-server", "--port", str(self.port), "--threads", str(threads)]
        if cache is not None:
            command += ["--cache", str(cache)]
        # SIGINT at its default action whatever this process ignores: Ctrl-C must end the server.
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self.log, env=child_env(),
                                        stdin=subprocess.DEVNULL,
                                        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rpc-server exited: {self.stderr()}")
            try:  # a bare connection: the server drops it and waits for the next client
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"rpc-server did not start listening within {timeout} s")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def helper_children() -> list[int]:
    """fsgen-rpc helper processes whose parent is this process (killed and reaped ones are gone)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and b"fsgen-rpc\x00session" in cmdline:
            found.append(int(pid))
    return found
