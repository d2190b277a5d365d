"""The OpenAI dialect: request bodies to fsgen calls, fsgen results to response bodies.

Parsing checks only the shape the OpenAI protocol defines (what is a prompt, `n`, `stream`, fields
fsgen does not support). Values of generation parameters go to the Python API as keywords and the
core validates them, exactly as for a Python caller; its InvalidArgumentError becomes a 400.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Optional


MAX_TOKENS_CAP = 1 << 24  # the core's own upper bound; it stops earlier at the end of the context


class RequestError(Exception):
    """A request the server refuses: HTTP status, OpenAI error type and code, and a message."""

    def __init__(self, message: str, status: int = 400, type: str = "invalid_request_error",
                 code: Optional[str] = None, param: Optional[str] = None, headers: Optional[dict] = None):
        super().__init__(message)
        self.message, self.status, self.type, self.code, self.param = message, status, type, code, param
        self.headers = headers or {}

    def body(self) -> dict:
        return error_body(self.message, self.type, self.code, self.param)


def error_body(message: str, type: str = "invalid_request_error", code: Optional[str] = None,
               param: Optional[str] = None) -> dict:
    return {"error": {"message": message, "type": type, "code": code, "param": param}}


# OpenAI fields fsgen does not implement: a request using them gets a 400 naming them, rather
# than an answer that silently ignores what it asked for.
UNSUPPORTED = ("tools", "tool_choice", "functions", "function_call", "parallel_tool_calls", "response_format",
               "logit_bias", "top_logprobs", "audio", "modalities", "prediction", "web_search_options",
               "reasoning_effort", "suffix", "echo", "best_of")
# Accepted and ignored when their value asks for nothing: OpenAI's defaults.
NEUTRAL = {"logprobs": (None, False, 0), "presence_penalty": (None, 0, 0.0), "frequency_penalty": (None, 0, 0.0),
           "user": None, "metadata": None, "store": (None, False), "service_tier": None}
OPENAI_COMMON = ("model", "max_tokens", "temperature", "top_p", "seed", "stop", "stream", "stream_options", "n")


@dataclass
class Defaults:
    """What a request that leaves a field out gets: the `fsgen serve` command line."""

    method: Optional[str] = None  # None: speculative for a pair
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: Optional[int] = None  # None: a fresh random seed per request, as OpenAI does
    max_tokens: Optional[int] = None  # None: up to the end of the context
    method_options: dict = field(default_factory=dict)  # command-line method options


@dataclass
class GenRequest:
    kind: str  # "chat" or "completion"
    model: str
    prompt: Optional[str]
    messages: Optional[list]
    method: Optional[str]
    kwargs: dict  # keywords for Pair.stream / Model.stream, besides prompt/messages/method
    stream: bool
    include_usage: bool


# Values of unsupported fields that ask for nothing (clients often send them): accepted, ignored.
_ASKS_NOTHING = {"best_of": (1,), "echo": (False,), "tool_choice": ("none",),
                 "response_format": ({"type": "text"},), "parallel_tool_calls": (False, True)}


def _check_unsupported(body: dict) -> None:
    for name in UNSUPPORTED:
        value = body.get(name)
        if value is None or value in ([], {}, False) and name != "echo" or value in _ASKS_NOTHING.get(name, ()):
            continue
        raise RequestError(f"'{name}' is not supported by fsgen serve", param=name, code="unsupported_field")
    for name, allowed in NEUTRAL.items():
        if allowed is not None and name in body and body[name] not in allowed:
            raise RequestError(f"'{name}'={body[name]!r} is not supported by fsgen serve (only {allowed[1]!r})",
                               param=name, code="unsupported_field")


def _text_content(content: Any, i: int) -> Any:
    """OpenAI's content: a str, or a list of parts of which fsgen takes the text ones."""
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RequestError(f"messages[{i}].content[{j}]: only text parts are supported, got {kind!r}",
                                   param=f"messages[{i}].content")
            texts.append(part["text"])
        return "".join(texts)
    return content


def _messages(value: Any) -> list:
    if not isinstance(value, list) or not value:
        raise RequestError("'messages' must be a non-empty array of {role, content} objects", param="messages")
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise RequestError(f"messages[{i}] must be an object", param="messages")
        for name in ("tool_calls", "function_call"):
            if message.get(name):
                raise RequestError(f"messages[{i}].{name} is not supported by fsgen serve", param="messages")
        out.append({"role": message.get("role"), "content": _text_content(message.get("content"), i)})
    return out


def _prompt(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        value = value[0]  # the SDK may send a one-element list
    if not isinstance(value, str):
        raise RequestError("'prompt' must be a string (one prompt per request)", param="prompt")
    return value


def parse(kind: str, body: Any, defaults: Defaults, *, allowed_fields: tuple[str, ...]) -> GenRequest:
    """Turn a JSON body into the call to make; raises RequestError for what the protocol refuses."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    _check_unsupported(body)
    prompt_field = "messages" if kind == "chat" else "prompt"
    known = set(OPENAI_COMMON) | set(NEUTRAL) | set(UNSUPPORTED) | set(allowed_fields) | {prompt_field}
    if kind == "chat":
        known.add("max_completion_tokens")
    unknown = sorted(set(body) - known)
    if unknown:
        raise RequestError(f"unknown field(s) {', '.join(map(repr, unknown))}; fsgen's own fields are "
                           f"{', '.join(allowed_fields)}", param=unknown[0], code="unknown_field")
    if prompt_field not in body:
        raise RequestError(f"'{prompt_field}' is required", param=prompt_field)
    n = body.get("n", 1)
    if n is not None and (isinstance(n, bool) or n != 1):
        raise RequestError(f"'n' must be 1: fsgen serve returns one choice per request (got {n!r})", param="n")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise RequestError(f"'stream' must be a boolean, got {stream!r}", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError("'stream_options' must be an object", param="stream_options")
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise RequestError("'stream_options.include_usage' must be a boolean", param="stream_options")
    model = body.get("model", "")
    if not isinstance(model, (str, type(None))):
        raise RequestError("'model' must be a string", param="model")

    method = body.get("method", defaults.method)
    if method is not None and not isinstance(method, str):
        raise RequestError(f"'method' must be a string, got {method!r}", param="method")

    kwargs: dict[str, Any] = {}
    for name in ("temperature", "top_p", "top_k", "min_p", "seed"):
        value = body.get(name)
        kwargs[name] = getattr(defaults, name) if value is None else value
    if kwargs["seed"] is None:
        kwargs["seed"] = secrets.randbits(32)
    max_tokens = body.get("max_completion_tokens") if kind == "chat" else None
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    if max_tokens is None:
        max_tokens = defaults.max_tokens if defaults.max_tokens is not None else MAX_TOKENS_CAP
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > MAX_TOKENS_CAP:
        max_tokens = MAX_TOKENS_CAP  # the core clamps to the room the context leaves
    kwargs["max_tokens"] = max_tokens
    if body.get("stop") is not None:
        kwargs["stop"] = body["stop"]
    for name in allowed_fields:
        if name != "method" and name in body and body[name] is not None:
            kwargs[name] = body[name]

    if kind == "chat":
        return GenRequest(kind, model or "", None, _messages(body["messages"]), method, kwargs, stream, include_usage)
    return GenRequest(kind, model or "", _prompt(body["prompt"]), None, method, kwargs, stream, include_usage)


# ---- responses ----

FINISH = {"eog": "stop", "stop": "stop", "length": "length", "cancelled": "stop"}


def cancelled_body() -> dict:
    """The error event that ends a stream cut short by cancel() or a stopping server."""
    return error_body("the generation was cancelled before it finished (the server may be stopping)",
                      type="server_error", code="cancelled")


def new_id(kind: str) -> str:
    return ("chatcmpl-" if kind == "chat" else "cmpl-") + secrets.token_hex(12)


def usage(stats: dict) -> dict:
    p, c = int(stats["n_prompt_tokens"]), int(stats["n_tokens"])
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
            "prompt_tokens_details": {"cached_tokens": int(stats["n_prompt_cached"])}}


def timings(stats: dict, method: str) -> dict:
    """llama-server's timing names, plus fsgen's own."""
    return {
        "cache_n": int(stats["n_prompt_cached"]),
        "prompt_n": int(stats["n_prompt_tokens"]) - int(stats["n_prompt_cached"]),
        "prompt_ms": 1000.0 * stats["prompt_seconds"],
        "predicted_n": int(stats["n_tokens"]),
        "predicted_ms": 1000.0 * stats["generation_seconds"],
        "predicted_per_second": float(stats["tokens_per_second"]),
        "draft_n": int(stats["drafted"]),
        "draft_n_accepted": int(stats["accepted"]),
        "system2_fraction": float(stats["system2_fraction"]),
        "system2_calls": int(stats["system2_calls"]),
        "method": method,
    }


def full_response(req: GenRequest, rid: str, model: str, result, method: str) -> dict:
    finish = FINISH.get(result.finish_reason, "stop")
    if req.kind == "chat":
        choice = {"index": 0, "message": {"role": "assistant", "content": result.text},
                  "logprobs": None, "finish_reason": finish}
        obj = "chat.completion"
    else:
        choice = {"index": 0, "text": result.text, "logprobs": None, "finish_reason": finish}
        obj = "text_completion"
    return {"id": rid, "object": obj, "created": int(time.time()), "model": model, "choices": [choice],
            "usage": usage(result.stats), "timings": timings(result.stats, method)}


def stream_chunk(req: GenRequest, rid: str, model: str, *, text: Optional[str] = None, source: Optional[int] = None,
                 draft: Optional[str] = None, finish: Optional[str] = None, role: bool = False,
                 extra: Optional[dict] = None) -> dict:
    """One SSE chunk: a piece of text with who wrote it, the opening role, or the finish."""
    if req.kind == "chat":
        delta: dict[str, Any] = {}
        if role:
            delta = {"role": "assistant", "content": ""}
        elif text is not None:
            delta = {"content": text, "fsgen_source": source, "fsgen_draft": draft}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        if text is not None:
            choice.update(fsgen_source=source, fsgen_draft=draft)
        obj = "text_completion"
    chunk = {"id": rid, "object": obj, "created": int(time.time()), "model": model, "choices": [choice]}
    if extra:
        chunk.update(extra)
    return chunk


def usage_chunk(req: GenRequest, rid: str, model: str, stats: dict) -> dict:
    obj = "chat.completion.chunk" if req.kind == "chat" else "text_completion"
    return {"id": rid, "object": obj, "created": int(time.time()), "model": model, "choices": [],
            "usage": usage(stats)}
