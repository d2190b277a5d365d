"""The core's table of methods and generation parameters, as Python reads it.

The table lives in the C++ core (src/params.cpp); this module only presents it: the signatures
and docstrings of ``generate``/``stream``, the type stubs, the CLI's flags and the server's fields
all come from here, and the core validates every call against the same table.
"""
from __future__ import annotations

import copy
import inspect
import numbers
from typing import Any, Optional

import numpy as np

from . import _core
from .errors import InvalidArgumentError

_PARAMS: tuple[dict, ...] = tuple(_core.param_table())
_METHODS: tuple[dict, ...] = tuple(_core.method_table())
METHOD_NAMES: tuple[str, ...] = tuple(m["name"] for m in _METHODS)
_BY_NAME = {p["name"]: p for p in _PARAMS}
ROUTER_NAMES: tuple[str, ...] = tuple(_BY_NAME["router"]["choices"])
SYSTEM2_NAMES: tuple[str, ...] = tuple(_BY_NAME["system2"]["choices"])


def param_table() -> list[dict]:
    """The generation parameters, as the core defines them.

    Returns
    -------
    list of dict
        One dict per parameter: ``name``, ``type`` (``"int"``, ``"float"``, ``"bool"``,
        ``"choice"``, ``"str_list"``), ``group`` (``"generation"`` and ``"sampling"`` apply to
        every call; ``"method"`` only where ``scopes`` say), ``doc``, ``default`` (None where it
        depends on the method or router: see the scopes), ``choices``, ``range`` (``lo``, ``hi``,
        ``lo_open``, ``hi_open``, ``text``) or None, ``none_allowed``, and ``scopes``: a list of
        ``{"methods", "routers", "system2", "default"}`` (an empty list means any).
    """
    return copy.deepcopy(list(_PARAMS))


def methods() -> dict[str, dict]:
    """The decoding methods a Pair offers.

    Returns
    -------
    dict
        Method name -> ``{"doc": str, "needs_small_base": bool, "parameters": list[str]}``,
        where ``parameters`` are the method parameters that apply to it under some router and
        System 2 kind (see :func:`method_params` for one combination).
    """
    out = {}
    for m in _METHODS:
        names = [p["name"] for p in _PARAMS if p["group"] == "method"
                 and any(m["name"] in s["methods"] for s in p["scopes"])]
        out[m["name"]] = {"doc": m["doc"], "needs_small_base": m["needs_small_base"], "parameters": names}
    return out


def method_params(method: str, router: str = "entropy", system2: str = "large") -> list[str]:
    """The method parameters that apply to ``method`` with this router and System 2 kind.

    Parameters
    ----------
    method, router, system2 : str
        Names as ``Pair.generate`` takes them.

    Returns
    -------
    list of str

    Raises
    ------
    InvalidArgumentError
        For an unknown name.
    """
    return list(_core.applicable_params(method, router, system2))


def core_value(name: str, value: Any) -> Any:
    """A Python value as the core's parameter map takes it (None, bool, int, float, str, list)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidArgumentError(f"{name} got an unsupported value {value!r} ({type(value).__name__})")


def make_options(options: dict, *, for_model: bool):
    """Validated core options from keyword arguments (the core checks names, types, ranges and
    which method parameters apply)."""
    return _core.make_options({k: core_value(k, v) for k, v in options.items()}, for_model)


# ---------------------------------------------------------------- signatures and documentation

def _for_model(p: dict) -> bool:
    if p["name"] == "method":
        return False
    return p["group"] != "method" or any("small" in s["methods"] for s in p["scopes"])


def parameters(for_model: bool) -> list[dict]:
    """The table's parameters a Model's (``for_model``) or a Pair's generate takes, in order."""
    return [p for p in _PARAMS if not for_model or _for_model(p)]


def annotation(p: dict) -> str:
    """The parameter's type as a stub writes it."""
    if p["type"] == "choice":
        base = "Literal[" + ", ".join(repr(c) for c in p["choices"]) + "]"
    else:
        base = {"int": "int", "float": "float", "bool": "bool", "str_list": "Union[str, Sequence[str]]"}[p["type"]]
    return f"Optional[{base}]" if p["default"] is None else base


def signature(for_model: bool) -> inspect.Signature:
    """``(self, prompt=None, *, messages=None, <the table's parameters>)``."""
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
              inspect.Parameter("prompt", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                annotation="Optional[str]"),
              inspect.Parameter("messages", kw, default=None, annotation="Optional[Sequence[Mapping[str, Any]]]")]
    for p in parameters(for_model):
        params.append(inspect.Parameter(p["name"], kw, default=p["default"], annotation=annotation(p)))
    return inspect.Signature(params)


def _scope_text(p: dict) -> str:
    if p["group"] != "method":
        return ""
    parts = []
    for s in p["scopes"]:
        where = "/".join(s["methods"])
        if s["routers"]:
            where += " with router " + "/".join(s["routers"])
        if s["system2"]:
            where += " with system2 " + "/".join(s["system2"])
        parts.append(f"{where} (default {s['default']!r})")
    return " Applies to " + "; ".join(parts) + "."


def docstring(summary: str, for_model: bool, returns: str) -> str:
    """A numpydoc docstring for generate/stream, from the table."""
    lines = [summary, "", "Parameters", "----------",
             "prompt : str, optional", "    Plain text, sent as is. Give exactly one of prompt and messages.",
             "messages : list of dict, optional",
             "    Chat messages ({'role', 'content'}), rendered with the chat template"
             + (" of the large model." if not for_model else ".")]
    for p in parameters(for_model):
        extra = f" {p['range']['text'][0].upper()}{p['range']['text'][1:]}." if p["range"] else ""
        lines += [f"{p['name']} : {annotation(p)}, default {p['default']!r}",
                  f"    {p['doc'][0].upper()}{p['doc'][1:]}.{extra}{_scope_text(p)}"]
    lines += ["", "Returns", "-------", returns, "", "Raises", "------",
              "InvalidArgumentError",
              "    An unknown parameter, a wrong type or value, or a method parameter that does not",
              "    apply (the message names those that do).",
              "ContextOverflowError", "    The prompt does not fit in the context.",
              "TemplateError", "    ``messages`` with a model whose chat template cannot be rendered.",
              "GenerationError", "    Decoding failed (non-finite logits, a failed decode)."]
    return "\n".join(lines)


def describe_default(value: Optional[Any]) -> str:
    return "None" if value is None else repr(value)
