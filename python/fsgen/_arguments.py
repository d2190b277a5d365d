"""Checking and converting the arguments of Model and Pair: model options, RPC endpoints, model
paths or names, and prompts."""
from __future__ import annotations

import os
from typing import Any, Union

import numpy as np

from . import _core
from .errors import InvalidArgumentError

PathLike = Union[str, "os.PathLike[str]"]

MODEL_OPTION_NAMES = ("n_ctx", "n_threads", "n_gpu_layers", "n_batch", "verbose", "flash_attn", "prompt_cache_mib")


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise InvalidArgumentError(f"{name} must be between {lo} and {hi}, got {value}")
    return int(value)


def check_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if value != value:
        raise InvalidArgumentError(f"{name} must not be NaN")
    return value


def model_options(n_ctx=4096, n_threads=None, n_gpu_layers=0, n_batch=512, verbose=False,
                   flash_attn=None, prompt_cache_mib=256) -> _core.ModelOptions:
    o = _core.ModelOptions()
    o.n_ctx = check_int("n_ctx", n_ctx, 8, 1 << 24)
    o.n_threads = 0 if n_threads is None else check_int("n_threads", n_threads, 1, 1024)
    o.n_gpu_layers = check_int("n_gpu_layers", n_gpu_layers, -1, 1 << 20)
    o.n_batch = check_int("n_batch", n_batch, 1, 1 << 16)
    o.verbose = bool(verbose)
    if flash_attn is not None and not isinstance(flash_attn, bool):
        raise InvalidArgumentError(f"flash_attn must be None (llama.cpp decides), True or False, got {flash_attn!r}")
    o.flash_attn = -1 if flash_attn is None else int(flash_attn)
    o.prompt_cache_mib = check_int("prompt_cache_mib", prompt_cache_mib, 0, 1 << 20)
    return o


def rpc_options(o: _core.ModelOptions, rpc, rpc_timeout, n_gpu_layers_given: bool) -> None:
    """Puts a remote model's servers into the core's options (a model on RPC servers runs in a
    helper process fsgen owns: see docs/API.md)."""
    if rpc is None:
        return
    if isinstance(rpc, str):
        rpc = [rpc]
    if not isinstance(rpc, (list, tuple)) or not rpc or not all(isinstance(e, str) for e in rpc):
        raise InvalidArgumentError(f"rpc must be a non-empty list of \"host:port\" strings, got {rpc!r}")
    o.rpc = list(rpc)
    o.rpc_timeout = check_float("rpc_timeout", rpc_timeout)
    if not o.rpc_timeout > 0:
        raise InvalidArgumentError(f"rpc_timeout must be > 0 seconds, got {rpc_timeout}")
    if not n_gpu_layers_given:
        o.n_gpu_layers = -1  # rpc implies every layer on the servers


def calibration_options(o: _core.ModelOptions) -> dict:
    """The context options a cost curve depends on."""
    return {"n_ctx": o.n_ctx, "n_threads": o.n_threads, "n_gpu_layers": o.n_gpu_layers, "n_batch": o.n_batch,
            "flash_attn": o.flash_attn, "rpc": list(o.rpc)}  # a remote model's costs are its endpoint's


def resolve_path(path: PathLike) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(f"a model path must be a str or os.PathLike, got {type(path).__name__}")
    text = os.fspath(path)
    if os.path.exists(text):
        return text
    from . import hub  # a pulled model's name
    if text in hub.known_names():
        return hub.resolve_model(text)
    return text  # the core says clearly that the file is missing


def prompt_args(prompt, messages):
    """The prompt or the messages converted for the core (text, (role, content) pairs); the core
    checks the prompt itself where the call starts (exactly one of the two, not empty)."""
    if prompt is not None:
        if not isinstance(prompt, str):
            raise InvalidArgumentError(f"prompt must be a str, got {type(prompt).__name__}")
        check_utf8(prompt, "prompt")
    if messages is None:
        return prompt, None
    if not isinstance(messages, (list, tuple)):
        raise InvalidArgumentError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    pairs = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) \
                or not isinstance(message.get("content"), str):
            raise InvalidArgumentError(f"messages[{i}] must be a dict with str 'role' and 'content'")
        check_utf8(message["content"], f"messages[{i}]['content']")
        pairs.append((message["role"], message["content"]))
    return prompt, pairs


def check_utf8(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise InvalidArgumentError(f"{what} is not valid UTF-8 text: {exc.reason}") from None
