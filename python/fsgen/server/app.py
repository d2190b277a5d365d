"""The ASGI app: OpenAI-style routes over one loaded fsgen Pair or Model, the page, health, metrics."""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from importlib import resources
from typing import Optional

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import protocol
from .generation import END, Generation
from .protocol import Defaults, RequestError, error_body
from .scheduler import QueueFull, ShuttingDown, acquire_or_cancel
from .state import RETRY_AFTER_SECONDS, ServerState, map_error

_ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "/")


def create_app(runner=None, *, model=None, small=None, large=None, small_base=None,
               model_options: Optional[dict] = None, defaults: Optional[Defaults] = None,
               api_key: Optional[str] = None, cors_origin: Optional[str] = None, max_queue: int = 32,
               max_body_bytes: int = 1 << 20, name: Optional[str] = None, on_ready=None, on_load_error=None):
    """The ASGI app of `fsgen serve`.

    Parameters
    ----------
    runner : fsgen.Pair or fsgen.Model, optional
        Already loaded models to serve (the caller closes them). Otherwise give `model` (one model)
        or `small` and `large` (a pair, optionally `small_base`): paths or pulled names, loaded
        in a background thread when the app starts, with `model_options` (n_ctx, n_threads, ...).
        Until they are loaded, /health answers 503 {"status": "loading"}.
    defaults : Defaults, optional
        Values for the fields a request leaves out (OpenAI's defaults unless given).
    api_key : str, optional
        When set, every /v1 route requires ``Authorization: Bearer <api_key>``.
    cors_origin : str, optional
        The one origin allowed to call the server from a browser page (CORS is off otherwise).
    max_queue : int
        How many requests may wait while one runs; more get 503 with Retry-After.
    max_body_bytes : int
        Larger request bodies get 413.
    on_ready, on_load_error : callable, optional
        Called with the server state once the models are loaded, or failed to load.

    Returns
    -------
    starlette.applications.Starlette
        The app; ``app.state.fsgen`` holds the server state (``begin_shutdown()`` cancels the
        running generations, as a stopping server must before waiting for its connections).
    """
    state = ServerState(runner=runner, model=model, small=small, large=large, small_base=small_base,
                        model_options=model_options, defaults=defaults, api_key=api_key, max_queue=max_queue,
                        max_body_bytes=max_body_bytes, name=name)
    page = {f: resources.files(__package__).joinpath("static", f).read_bytes()
            for f in ("index.html", "app.js", "style.css")}  # read once: no request opens a file

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state.start_loading(asyncio.get_running_loop(), on_ready, on_load_error)
        yield
        await asyncio.get_running_loop().run_in_executor(None, state.close)

    def authorized(request: Request) -> bool:
        if state.api_key is None:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), state.api_key.encode())

    def check_v1(request: Request) -> None:
        if not authorized(request):
            raise RequestError("missing or wrong API key (Authorization: Bearer KEY)", status=401,
                               code="invalid_api_key")

    def error_response(exc: RequestError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    async def read_json(request: Request):
        limit = state.max_body_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise RequestError(f"the request body is over {limit} bytes", status=413, code="request_too_large")
        data = bytearray()
        async for piece in request.stream():
            data += piece
            if len(data) > limit:
                raise RequestError(f"the request body is over {limit} bytes", status=413, code="request_too_large")
        try:
            return json.loads(bytes(data))
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(f"the request body is not valid JSON: {exc}", code="invalid_json") from None

    async def wait_disconnect(request: Request, event: asyncio.Event, holder: dict) -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                event.set()
                if holder.get("gen") is not None:
                    holder["gen"].cancel()
                return

    async def generate(request: Request, kind: str):
        started = time.monotonic()
        endpoint = "chat" if kind == "chat" else "completions"
        try:
            check_v1(request)
            if state.load_error:
                raise RequestError(f"the models failed to load: {state.load_error}", status=503,
                                   type="server_error", code="load_failed")
            if not state.ready:
                raise RequestError("the models are still loading" if not state.shutting_down else
                                   "the server is shutting down", status=503, type="server_error",
                                   code="loading", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            body = await read_json(request)
            req = protocol.parse(kind, body, state.defaults, allowed_fields=state.request_fields)
            call, method = state.build_call(req)
            state.precheck(call)
        except Exception as exc:
            return error_response(map_error(exc))

        disconnected, holder = asyncio.Event(), {}
        watcher = asyncio.ensure_future(wait_disconnect(request, disconnected, holder))
        streaming_started = False
        try:
            try:
                granted = await acquire_or_cancel(state.scheduler, disconnected)
            except QueueFull:
                return error_response(RequestError(
                    f"the queue is full ({state.scheduler.max_queue} waiting); try again later", status=503,
                    type="server_error", code="queue_full", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}))
            except ShuttingDown:
                return error_response(RequestError("the server is shutting down", status=503, type="server_error",
                                                   code="shutting_down"))
            state.metrics.queue_wait.observe(time.monotonic() - started)
            if granted is None or disconnected.is_set():
                if granted:
                    state.scheduler.release()
                state.metrics.left_queue.inc()
                return Response(status_code=499)  # nobody reads it: the client has gone

            gen = Generation(state.runner, call, asyncio.get_running_loop(), forward_chunks=req.stream,
                             prepare=lambda: state.recover(method))
            holder["gen"] = gen
            state.active.add(gen)
            gen.start()
            finishing = asyncio.ensure_future(_finish(state, gen, endpoint, started))
            state.tasks.add(finishing)  # the loop keeps only weak references to tasks
            finishing.add_done_callback(state.tasks.discard)
            item = await gen.next()
            if item is END and gen.error is not None:
                return error_response(map_error(gen.error, gen.rpc_lost))
            rid, model = protocol.new_id(kind), state.model_id
            if not req.stream:
                if item is not END:  # only END comes when chunks are not forwarded
                    item = await gen.next()
                if gen.error is not None:
                    return error_response(map_error(gen.error, gen.rpc_lost))
                return JSONResponse(protocol.full_response(req, rid, model, gen.result, method))
            state.metrics.first_token.observe(time.monotonic() - started)
            streaming_started = True
            return StreamingResponse(_sse(req, rid, model, method, gen, item), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        finally:
            watcher.cancel()
            if not streaming_started and holder.get("gen") is not None and disconnected.is_set():
                holder["gen"].cancel()

    async def chat(request: Request):
        return await generate(request, "chat")

    async def completions(request: Request):
        return await generate(request, "completion")

    async def models(request: Request):
        try:
            check_v1(request)
        except RequestError as exc:
            return error_response(exc)
        info = {"methods": state.methods, "default_method": state.default_method(),
                "request_fields": list(state.request_fields), "ready": state.ready}
        return JSONResponse({"object": "list", "data": [
            {"id": state.model_id, "object": "model", "created": 0, "owned_by": "fsgen", "fsgen": info}]})

    async def health(request: Request):
        if state.load_error:
            return JSONResponse({"status": "error", "message": state.load_error}, status_code=503)
        if state.runner is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        if state.shutting_down:
            return JSONResponse({"status": "shutting down"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request):
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    def static(name: str, media_type: str):
        async def serve(request: Request):
            return Response(page[name], media_type=media_type, headers={"Cache-Control": "no-cache"})
        return serve

    async def http_error(request: Request, exc: HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(error_body(exc.detail or "error", code=code), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def server_error(request: Request, exc: Exception):
        return error_response(map_error(exc))

    middleware = []
    if cors_origin:
        middleware.append(Middleware(CORSMiddleware, allow_origins=[cors_origin], allow_methods=["GET", "POST"],
                                     allow_headers=["Authorization", "Content-Type"]))
    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/", static("index.html", "text/html; charset=utf-8"), methods=["GET"]),
        Route("/app.js", static("app.js", "text/javascript; charset=utf-8"), methods=["GET"]),
        Route("/style.css", static("style.css", "text/css; charset=utf-8"), methods=["GET"]),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error, Exception: server_error})
    app.state.fsgen = state
    return _CountRequests(app, state)


async def _finish(state: ServerState, gen: Generation, endpoint: str, started: float) -> None:
    """Once the core is done with the models: free the turn, count, forget the generation."""
    try:
        await gen.finished.wait()
    finally:
        state.active.discard(gen)
        state.scheduler.release()
        result = gen.result
        if gen.error is not None or result is None:
            finish = "error"
        elif result.finish_reason == "cancelled":
            finish = "cancelled"
        else:
            finish = protocol.FINISH.get(result.finish_reason, result.finish_reason)
        state.metrics.generation_done(gen.sources, result.stats if result else {}, finish)
        state.metrics.latency.labels(endpoint).observe(time.monotonic() - started)


def _sse_line(obj) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


async def _sse(req, rid: str, model: str, method: str, gen: Generation, first):
    finished = False
    try:
        if req.kind == "chat":
            yield _sse_line(protocol.stream_chunk(req, rid, model, role=True))
        item = first
        while item is not END:
            yield _sse_line(protocol.stream_chunk(req, rid, model, text=item.text, source=int(item.source),
                                                  draft=item.draft))
            item = await gen.next()
        # A stream that fails or is cancelled ends with an error object and no [DONE], as OpenAI's
        # and llama-server's do (a finish_reason would pass the cut text off as the whole answer).
        failed = gen.error is not None or gen.result.finish_reason == "cancelled"
        if gen.error is not None:
            error = map_error(gen.error, gen.rpc_lost)
            yield _sse_line(error.body())
        elif failed:
            yield _sse_line(protocol.cancelled_body())
        else:
            stats = gen.result.stats
            finish = protocol.FINISH.get(gen.result.finish_reason, "stop")
            yield _sse_line(protocol.stream_chunk(req, rid, model, finish=finish,
                                                  extra={"timings": protocol.timings(stats, method)}))
            if req.include_usage:
                yield _sse_line(protocol.usage_chunk(req, rid, model, stats))
        if not failed:
            yield b"data: [DONE]\n\n"
        finished = True
    finally:
        if not finished:  # the client left mid-stream (or the server is stopping)
            gen.cancel()


class _CountRequests:
    """Counts every answered request by endpoint and status for /metrics."""

    def __init__(self, app: Starlette, state: ServerState):
        self.app, self._server_state = app, state

    def __getattr__(self, name):  # app.state, app.routes, ... as on the Starlette app
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        endpoint = path if path in _ENDPOINTS else "other"
        status = {}

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self._server_state.metrics.requests.labels(endpoint, str(status.get("code", 499))).inc()
