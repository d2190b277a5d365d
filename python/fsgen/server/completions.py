"""The generating routes, /v1/chat/completions and /v1/completions: check the request, wait for the
turn, run the generation, answer with one JSON body or a stream of server-sent events.

Handlers read the server state from ``request.app.state.fsgen``. A client that leaves cancels its
generation, whether it waits in line, streams, or waits for a whole answer.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from . import fields, protocol
from .generation import END, Generation
from .protocol import GenRequest, RequestError
from .scheduler import QueueFull, ShuttingDown, acquire_or_cancel
from .state import RETRY_AFTER_SECONDS, ServerState, map_error



def error_response(exc: RequestError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def check_api_key(state: ServerState, request: Request) -> None:
    """Raises a 401 RequestError unless the request carries the server's API key (when it has one)."""
    if state.api_key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), state.api_key.encode()):
        raise RequestError("missing or wrong API key (Authorization: Bearer KEY)", status=401, code="invalid_api_key")


async def chat(request: Request) -> Response:
    return await _complete(request, "chat")


async def completions(request: Request) -> Response:
    return await _complete(request, "completion")


async def _read_json(request: Request, limit: int):
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


async def _admit(state: ServerState, request: Request, kind: str) -> tuple[GenRequest, dict, str]:
    """The parsed request, the runner's keywords and the method, for a request the server takes."""
    check_api_key(state, request)
    if state.load_error:
        raise RequestError(f"the models failed to load: {state.load_error}", status=503, type="server_error",
                           code="load_failed")
    if not state.ready:
        raise RequestError("the models are still loading" if not state.shutting_down else
                           "the server is shutting down", status=503, type="server_error",
                           code="loading", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    body = await _read_json(request, state.max_body_bytes)
    req = protocol.parse(kind, body, state.defaults, allowed_fields=state.request_fields)
    call, method = state.build_call(req)
    state.precheck(call)
    return req, call, method


async def _watch_disconnect(request: Request, event: asyncio.Event, holder: dict) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            event.set()
            if holder.get("gen") is not None:
                holder["gen"].cancel()
            return


async def _complete(request: Request, kind: str) -> Response:
    state: ServerState = request.app.state.fsgen
    started = time.monotonic()
    try:
        req, call, method = await _admit(state, request, kind)
    except Exception as exc:
        return error_response(map_error(exc))

    disconnected, holder = asyncio.Event(), {}
    watcher = asyncio.ensure_future(_watch_disconnect(request, disconnected, holder))
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

        gen = Generation(state.runner, call, asyncio.get_running_loop(), stream=req.stream,
                         prepare=lambda: state.recover(method))
        holder["gen"] = gen
        state.active.add(gen)
        gen.start()
        combines = fields.combines_models(method, call.get("system2"))
        finishing = asyncio.ensure_future(_finish(state, gen, "chat" if kind == "chat" else "completions",
                                                  started, combines))
        state.tasks.add(finishing)  # the loop keeps only weak references to tasks
        finishing.add_done_callback(state.tasks.discard)
        item = await gen.next()  # a non-streaming generation gives only END
        if item is END and gen.error is not None:
            return error_response(map_error(gen.error, gen.rpc_lost))
        rid, model = protocol.new_id(kind), state.model_id
        if not req.stream:
            return JSONResponse(protocol.full_response(req, rid, model, gen.result, method))
        state.metrics.first_token.observe(time.monotonic() - started)
        streaming_started = True
        return StreamingResponse(_sse(req, rid, model, method, gen, item), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    finally:
        watcher.cancel()
        if not streaming_started and holder.get("gen") is not None and disconnected.is_set():
            holder["gen"].cancel()


async def _finish(state: ServerState, gen: Generation, endpoint: str, started: float, combines: bool) -> None:
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
        state.metrics.generation_done(gen.sources, result.stats if result else {}, finish, combines=combines)
        state.metrics.latency.labels(endpoint).observe(time.monotonic() - started)


def _sse_line(obj) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


async def _sse(req: GenRequest, rid: str, model: str, method: str, gen: Generation, first):
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
            yield _sse_line(map_error(gen.error, gen.rpc_lost).body())
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
