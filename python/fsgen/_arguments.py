"""Checking and converting the arguments of Model and Pair: model options, RPC endpoints, model
paths or names, and prompts."""
from __future__ import annotations

import os
from typing import Any, Union

import numpy as np

from . import _core
from .errors import InvalidArgumentError

PathLike = Union[str, "os.PathLike[str]"]

# The model options a Pair passes to the models it loads (its own large_rpc and rpc_timeout place
# System 2 on RPC servers).
MODEL_OPTION_NAMES = tuple(n for n in _core.model_option_names() if n not in ("rpc", "rpc_timeout"))


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise InvalidArgumentError(f"{name} must be between {lo} and {hi}, got {value}")
    return int(value)


def model_options(**given) -> _core.ModelOptions:
    """The core's model options from keyword arguments (None: the default). The core's model
    option table checks names, types and ranges, as it does for the C API; rpc without
    n_gpu_layers puts every layer on the servers."""
    from ._options import core_value
    return _core.make_model_options({name: core_value(name, value) for name, value in given.items()})


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
