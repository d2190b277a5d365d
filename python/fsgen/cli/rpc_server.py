"""`fsgen rpc-server`: lends this machine's compute to another fsgen over llama.cpp's RPC protocol.

The server is ggml's own (``ggml_backend_rpc_start_server``), run by the ``fsgen-rpc`` executable
shipped beside llama.cpp's libraries: this process becomes it (exec), so Ctrl-C ends it.
"""
from __future__ import annotations

import ipaddress
import os
import sys

HELP = ("serve this machine's compute (CPU, or GPU where built) to a remote fsgen over llama.cpp's RPC "
        "protocol; one client at a time; NO authentication or encryption: trusted networks only")


def add_parser(sub) -> None:
    p = sub.add_parser("rpc-server", help=HELP, description=(
        "Run llama.cpp's RPC server with this build's backends, so that another machine can run a model "
        "(e.g. System 2: fsgen generate --large-rpc HOST:PORT) here. It never returns (Ctrl-C ends it) and "
        "serves ONE client at a time: while one fsgen holds a model here, others wait. The protocol has no "
        "authentication and no encryption: anyone who reaches the port can use this machine, so it listens "
        "on loopback unless --allow-remote is given; use it on trusted networks only."))
    p.add_argument("--host", default="127.0.0.1", help="IPv4 address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=50052)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: half the cores)")
    p.add_argument("--cache", metavar="DIR", default=None,
                   help="cache received tensors in DIR (faster reloads of large models)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --host (exposes this machine to the network: trusted networks only)")
    p.set_defaults(run=run)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.IPv4Address(host).is_loopback
    except ValueError:
        return False


def run(args) -> int:
    from .. import _core

    try:
        ipaddress.IPv4Address(args.host)
    except ValueError:
        print(f"fsgen rpc-server: --host must be an IPv4 address, got {args.host!r}", file=sys.stderr)
        return 2
    if not _is_loopback(args.host) and not args.allow_remote:
        print(f"fsgen rpc-server: {args.host} is not a loopback address; the RPC protocol has no authentication "
              "or encryption, so listening on the network needs --allow-remote", file=sys.stderr)
        return 2
    if not 1 <= args.port <= 65535:
        print(f"fsgen rpc-server: --port must be in 1..65535, got {args.port}", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print("fsgen rpc-server: --threads must be >= 1", file=sys.stderr)
        return 2
    if not _core.build_info().get("rpc"):
        print("fsgen rpc-server: this fsgen was built without llama.cpp's RPC backend (GGML_RPC=OFF)", file=sys.stderr)
        return 1
    helper = _core.rpc_helper_path()
    if not os.access(helper, os.X_OK):
        print(f"fsgen rpc-server: {helper} is missing (a broken install?)", file=sys.stderr)
        return 1
    argv = [helper, "serve", "--host", args.host, "--port", str(args.port)]
    if args.threads is not None:
        argv += ["--threads", str(args.threads)]
    if args.cache:
        os.makedirs(args.cache, exist_ok=True)
        argv += ["--cache", os.path.abspath(args.cache)]
    if args.allow_remote:
        argv.append("--allow-remote")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(helper, argv)  # never returns
    return 1
