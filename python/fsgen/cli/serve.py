"""`fsgen serve`: the command line of the server (fsgen.server)."""
from __future__ import annotations

import sys

from ..server import fields
from .flags import add_calibration_argument, add_model_arguments, add_table_flags, check_model_arguments, load_options, table_args


def add_parser(sub) -> None:
    """Register `fsgen serve` on the fsgen command's subparsers."""
    p = sub.add_parser("serve", help="serve a pair (or one model) over HTTP, in OpenAI's dialect, with a chat page",
                       description="An OpenAI-compatible server on fsgen: POST /v1/chat/completions, "
                       "/v1/completions; GET /v1/models, /health, /metrics; a chat page at /.")
    add_model_arguments(p)
    p.add_argument("--method", choices=fields.methods(), default=None,
                   help="default method for requests that do not name one (pair default: speculative)")
    add_table_flags(p.add_argument_group("method options (apply to requests using a method that takes them)"),
                    fields.method_params().values())
    s = p.add_argument_group("defaults for requests that leave a field out (OpenAI's)")
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--top-p", type=float, default=1.0)
    s.add_argument("--top-k", type=int, default=0, help="0: off")
    s.add_argument("--min-p", type=float, default=0.0, help="0: off")
    s.add_argument("--seed", type=int, default=None, help="default: a random seed per request")
    s.add_argument("--max-tokens", type=int, default=None, help="default: up to the end of the context")
    n = p.add_argument_group("server")
    n.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    n.add_argument("--port", type=int, default=8080, help="port (0: any free port; the URL is printed)")
    n.add_argument("--api-key", default=None, help="require Authorization: Bearer KEY on /v1 routes")
    n.add_argument("--cors-origin", default=None, help="allow this browser origin (CORS is off otherwise)")
    n.add_argument("--max-queue", type=int, default=32, help="requests that may wait while one runs")
    n.add_argument("--max-body-bytes", type=int, default=1 << 20, help="larger request bodies get 413")
    n.add_argument("--n-ctx", type=int, default=4096)
    n.add_argument("--threads", type=int, default=None)
    n.add_argument("--prompt-cache-mib", type=int, default=256,
                   help="host memory per model context for earlier prompts' KV state, restored when a request "
                   "shares their prefix (default 256; 0: off)")
    add_calibration_argument(n)
    n.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(run=run)


def run(args) -> int:
    """Run `fsgen serve` until Ctrl-C (then 130) or a failed model load (then 1)."""
    try:
        import uvicorn  # noqa: F401

        from ..server.app import create_app
        from ..server.protocol import Defaults
    except ImportError as exc:  # the serve extra is missing
        print(f"fsgen serve needs its extras ({exc}): pip install 'fsgen[serve]'", file=sys.stderr)
        return 2

    check_model_arguments(args, "serve")
    options = table_args(args, fields.method_params().values())
    defaults = Defaults(method=args.method, temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                        min_p=args.min_p, seed=args.seed, max_tokens=args.max_tokens, method_options=options)
    outcome = {"code": 0}
    holder = {}

    def on_ready(state):
        curve = state.calibration.get("verify_seconds") or {}
        if curve:  # what the draft planner and fs's guard start from on this machine
            rows = ", ".join(f"{r} rows {s * 1000:.1f} ms" for r, s in sorted(curve.items()) if r in (1, 2, 4, 8, 16))
            step = state.calibration.get("draft_seconds")
            print(f"fsgen serve: verify costs {rows}" + (f"; System 1 step {step * 1000:.1f} ms" if step else ""),
                  flush=True)
        print(f"fsgen serve: ready, serving {state.model_id}", flush=True)

    def on_load_error(state):
        print(f"fsgen serve: error: {state.load_error}", file=sys.stderr, flush=True)
        outcome["code"] = 1
        if "server" in holder:
            holder["server"].should_exit = True

    load = load_options(args)  # rpc / large_rpc / rpc_timeout go to Model / Pair with n_ctx and threads
    small_base = load.pop("small_base", None)
    app = create_app(model=args.model, small=args.small, large=args.large, small_base=small_base,
                     model_options=dict(n_ctx=args.n_ctx, n_threads=args.threads,
                                        prompt_cache_mib=args.prompt_cache_mib, **load), defaults=defaults,
                     api_key=args.api_key, cors_origin=args.cors_origin, max_queue=args.max_queue,
                     max_body_bytes=args.max_body_bytes, on_ready=on_ready, on_load_error=on_load_error)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                            lifespan="on", timeout_graceful_shutdown=10)
    server = _Server(config, app.state.fsgen)
    holder["server"] = server
    server.run()
    return outcome["code"]


try:
    import uvicorn as _uvicorn

    class _Server(_uvicorn.Server):
        """uvicorn's server, which on Ctrl-C first cancels the running generations (uvicorn then
        waits for the connections, which end as soon as their generations stop)."""

        def __init__(self, config, state):
            super().__init__(config)
            self._fsgen_state = state

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started and self.servers:
                host, port = self.servers[0].sockets[0].getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                print(f"fsgen serve: listening on http://{shown}:{port}/ (API: http://{shown}:{port}/v1)",
                      flush=True)

        def handle_exit(self, sig, frame) -> None:
            state = self._fsgen_state
            for generation in list(state.active):  # thread-safe: stops at the next decode step
                generation.cancel()
            if state.loop is not None:
                try:
                    state.loop.call_soon_threadsafe(state.begin_shutdown)
                except RuntimeError:
                    pass
            super().handle_exit(sig, frame)
except ImportError:  # the serve extra is missing: run() says so
    _Server = None

