"""A userspace TCP proxy that adds latency (loopback only), for remote-model tests and benchmarks.

The kernels here have no netem qdisc, so latency is added in userspace: every chunk read from one
side is written to the other at its arrival time plus --delay-ms (per direction: a round trip gains
twice the delay). Chunks are not delayed again behind one another: a burst arrives a delay later,
as a burst. SIGUSR1 holds all traffic (a stalled link: bytes are kept, nothing is forwarded, no
connection is closed); SIGUSR2 releases it. SIGHUP prints "bytes UP DOWN" (forwarded to the server
and back to the client so far). On stdin, a line "delay MS" sets the delay for what arrives next,
and "rate BYTES" caps each direction at BYTES per second (0: no cap), a bandwidth that pipelining
cannot hide; each is printed back once set.

    python tests/support/delay_proxy.py --target-port 50052 --delay-ms 5   # prints "port N" when ready

Used from Python as ``DelayProxy(target_port, delay_ms)`` (a subprocess; see start()).
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from typing import Optional

_LOOPBACK = "127.0.0.1"


_counts = {"up": 0, "down": 0}
_delay = {"seconds": 0.0}
_rate = {"bytes_per_second": 0.0}


class _Link:
    def __init__(self, held: asyncio.Event):
        self.released = held  # set: traffic flows; cleared: held

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
        queue: asyncio.Queue = asyncio.Queue()
        sender = asyncio.ensure_future(self._send(queue, writer))
        try:
            while True:
                data = await reader.read(1 << 16)
                _counts[direction] += len(data)
                queue.put_nowait((time.monotonic() + _delay["seconds"], data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()

    async def _send(self, queue: asyncio.Queue, writer: asyncio.StreamWriter) -> None:
        free_at = 0.0  # when the capped link has sent what went before
        try:
            while True:
                due, data = await queue.get()
                if _rate["bytes_per_second"] > 0:  # its transmission time, after what is ahead of it
                    due = max(due, free_at) + len(data) / _rate["bytes_per_second"]
                    free_at = due
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self.released.wait()
                if not data:
                    writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass


def _read_command(loop: asyncio.AbstractEventLoop) -> None:
    line = sys.stdin.readline()
    if not line:  # no more commands
        loop.remove_reader(sys.stdin.fileno())
        return
    fields = line.split()
    if len(fields) == 2 and fields[0] == "delay":
        _delay["seconds"] = float(fields[1]) / 1000.0
    elif len(fields) == 2 and fields[0] == "rate":
        _rate["bytes_per_second"] = float(fields[1])
    else:
        return
    print(" ".join(fields), flush=True)


async def _serve(target_port: int, delay: float, listen_port: int) -> None:
    _delay["seconds"] = delay
    released = asyncio.Event()
    released.set()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, released.clear)
    loop.add_signal_handler(signal.SIGUSR2, released.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: print(f"bytes {_counts['up']} {_counts['down']}", flush=True))
    loop.add_reader(sys.stdin.fileno(), _read_command, loop)

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(_LOOPBACK, target_port)
        except OSError:
            client_writer.close()
            return
        link = _Link(released)
        try:
            await asyncio.gather(link.pump(client_reader, server_writer, "up"),
                                 link.pump(server_reader, client_writer, "down"))
        except (ConnectionError, OSError):
            pass
        finally:
            for w in (client_writer, server_writer):
                w.close()

    server = await asyncio.start_server(handle, _LOOPBACK, listen_port)
    port = server.sockets[0].getsockname()[1]
    print(f"port {port}", flush=True)
    async with server:
        await server.serve_forever()


class DelayProxy:
    """The proxy in a subprocess: ``with DelayProxy(port, delay_ms=5) as proxy: ... proxy.port``."""

    def __init__(self, target_port: int, delay_ms: float = 0.0, timeout: float = 20.0):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--target-port", str(target_port), "--delay-ms", str(delay_ms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()  # "port N" once listening
        if not line.startswith("port "):
            self.close()
            raise RuntimeError(f"the delay proxy did not start: {line!r}")
        self.port: int = int(line.split()[1])
        self.endpoint = f"{_LOOPBACK}:{self.port}"

    def hold(self) -> None:
        """Stall the link: keep every byte, forward nothing."""
        self.process.send_signal(signal.SIGUSR1)

    def release(self) -> None:
        self.process.send_signal(signal.SIGUSR2)

    def set_delay(self, delay_ms: float) -> None:
        """The delay per direction from now on (what is already on its way keeps its own)."""
        self._command("delay", delay_ms)

    def set_rate(self, bytes_per_second: float) -> None:
        """Cap each direction at this many bytes per second from now on (0: no cap)."""
        self._command("rate", bytes_per_second)

    def _command(self, name: str, value: float) -> None:
        self.process.stdin.write(f"{name} {value}\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().split() != [name, str(value)]:
            raise RuntimeError(f"the delay proxy did not take {name} {value}")

    def bytes(self) -> tuple[int, int]:
        """Bytes forwarded so far: (to the server, back to the client)."""
        self.process.send_signal(signal.SIGHUP)
        fields = self.process.stdout.readline().split()
        return int(fields[1]), int(fields[2])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def __enter__(self) -> "DelayProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target-port", type=int, required=True, help="the server's port on 127.0.0.1")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added delay per direction")
    parser.add_argument("--listen-port", type=int, default=0, help="0: any free port (printed)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args.target_port, args.delay_ms / 1000.0, args.listen_port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
