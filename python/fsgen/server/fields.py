"""Which fsgen fields a request may carry, and which methods exist: read from the core's table
(`fsgen.param_table()`, `fsgen.methods()`, `fsgen.method_params()`), the one place the server
learns parameter and method names."""
from __future__ import annotations

from typing import Any, Optional

import fsgen

# OpenAI's own names for these, or fields the server handles itself.
_OPENAI_NAMED = ("temperature", "top_p", "seed", "max_tokens", "stop", "trace", "method")
# The System 2 kinds, and the methods of the same names, whose tokens combine both models' logits.
_COMBINING = ("contrastive", "proxy")


def methods() -> list[str]:
    """Every method a Pair accepts, in the core's order."""
    return list(fsgen.methods())


def method_params(for_model: bool = False) -> dict[str, dict[str, Any]]:
    """name -> the table's row, for every method parameter (with one model: those it takes)."""
    return {p["name"]: p for p in fsgen.param_table() if p["group"] == "method"
            and (not for_model or any("small" in s["methods"] for s in p["scopes"]))}


def request_fields(for_model: bool = False) -> tuple[str, ...]:
    """fsgen's own per-request fields: method, the method parameters, and the table's sampling
    parameters OpenAI does not name (top_k, min_p)."""
    sampling = [p["name"] for p in fsgen.param_table() if p["group"] == "sampling" and p["name"] not in _OPENAI_NAMED]
    return ("method", *method_params(for_model), *sampling)


def applies(name: str, method: str, router: Optional[str], system2: Optional[str]) -> bool:
    """Whether a method option from the command line goes with a request for `method` (with this
    router and System 2 kind): exactly when the core says the parameter applies there."""
    try:
        return name in fsgen.method_params(method, router or "entropy", system2 or "large")
    except fsgen.InvalidArgumentError:  # an unknown method/router: the core reports it for the request
        return False


def combines_models(method: str, system2: Optional[str]) -> bool:
    """Whether System 2's tokens in a call for `method` are both models combined (fsgen.Source.COMBINED)
    rather than the large model's: contrastive decoding or proxy tuning, as the method itself or as
    the System 2 kind of a method that takes one."""
    try:
        takes_kind = "system2" in fsgen.method_params(method)
    except fsgen.InvalidArgumentError:  # one model ("model"): no System 2
        return False
    return ((system2 or "large") if takes_kind else method) in _COMBINING
