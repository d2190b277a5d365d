"""The ASGI app: OpenAI-style routes over one loaded fsgen Pair or Model, the page, health, metrics.

`create_app` wires the routes (handlers here and in fsgen.server.completions) to one ServerState,
which every handler reads from ``request.app.state.fsgen``.
"""
from __future__ import annotations

import asyncio
import contextlib
from importlib import resources
from typing import Optional

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .completions import chat, check_api_key, completions, error_response
from .protocol import Defaults, RequestError, error_body
from .state import ServerState, map_error

_ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "/")
_PAGE = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/style.css": ("style.css", "text/css; charset=utf-8")}


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
        *(Route(path, _page_file(path), methods=["GET"]) for path in _PAGE),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=_lifespan(on_ready, on_load_error),
                    exception_handlers={HTTPException: http_error, Exception: server_error})
    app.state.fsgen = state
    app.state.page = {path: resources.files(__package__).joinpath("static", file).read_bytes()
                      for path, (file, _) in _PAGE.items()}  # read once: no request opens a file
    return _CountRequests(app, state)


def _lifespan(on_ready, on_load_error):
    """Load the models once the port is bound; on the way out, stop and free everything."""
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        state: ServerState = app.state.fsgen
        state.start_loading(asyncio.get_running_loop(), on_ready, on_load_error)
        yield
        await asyncio.get_running_loop().run_in_executor(None, state.close)
    return lifespan


async def models(request: Request) -> Response:
    state: ServerState = request.app.state.fsgen
    try:
        check_api_key(state, request)
    except RequestError as exc:
        return error_response(exc)
    info = {"methods": state.methods, "default_method": state.default_method(),
            "request_fields": list(state.request_fields), "ready": state.ready,
            "vocab": state.vocab()}
    return JSONResponse({"object": "list", "data": [
        {"id": state.model_id, "object": "model", "created": 0, "owned_by": "fsgen", "fsgen": info}]})


async def health(request: Request) -> Response:
    state: ServerState = request.app.state.fsgen
    if state.load_error:
        return JSONResponse({"status": "error", "message": state.load_error}, status_code=503)
    if state.runner is None:
        return JSONResponse({"status": "loading", "reason": state.loading}, status_code=503)
    if state.shutting_down:
        return JSONResponse({"status": "shutting down"}, status_code=503)
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    state: ServerState = request.app.state.fsgen
    return Response(state.metrics.render(), media_type=state.metrics.content_type)


def _page_file(path: str):
    """The handler of one file of the chat page."""
    async def page_file(request: Request) -> Response:
        return Response(request.app.state.page[path], media_type=_PAGE[path][1],
                        headers={"Cache-Control": "no-cache"})
    return page_file


async def http_error(request: Request, exc: HTTPException) -> Response:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    return JSONResponse(error_body(exc.detail or "error", code=code), status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def server_error(request: Request, exc: Exception) -> Response:
    return error_response(map_error(exc))


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
