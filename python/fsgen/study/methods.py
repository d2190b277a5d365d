"""The study's method configurations (pure; imported by the CLI without the heavy extras)."""
from __future__ import annotations

from .._options import METHOD_NAMES

DEFAULT_METHODS = ("oracle", "contrastive", "speculative", "fs")
METHODS = METHOD_NAMES  # the core's methods (fsgen.methods()); each is a study config below
DEFAULT_THRESHOLDS = (0.1, 0.3, 0.5, 1.0, 2.0)   # entropy router, nats


def configs(methods=DEFAULT_METHODS, thresholds=DEFAULT_THRESHOLDS, *, proxy=False,
            baselines=True, params=None) -> list:
    """Method configurations: [{"config": id, "method": fsgen method, "params": {...}}].

    contrastive and proxy run in oracle mode (System 2 = that method, consulted at every step) so
    that mismatches against System 1's greedy token are recorded; fs runs once per entropy
    threshold. Every method runs with fsgen's defaults unless ``params`` overrides them, e.g.
    ``{"speculative": {"draft_max": 5}, "contrastive": {"variant": "fsgen"}}`` (FS-GEN's
    settings); overridden configs get ids like ``speculative[draft_max=5]`` so that records made
    with other settings are never mixed with them."""
    methods, params = list(methods), dict(params or {})
    unknown = (set(methods) | set(params)) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    if "proxy" in methods and not proxy:
        raise ValueError("the proxy method needs small_base (the small model's base version)")
    if baselines:
        methods = ["small", "large"] + [m for m in methods if m not in ("small", "large")]
    out = []
    for m in dict.fromkeys(methods):
        extra = dict(sorted(params.get(m, {}).items()))
        tag = "[" + ",".join(f"{k}={v}" for k, v in extra.items()) + "]" if extra else ""
        if m in ("small", "large", "speculative"):
            out.append({"config": m + tag, "method": m, "params": extra})
        elif m in ("oracle", "contrastive", "proxy"):
            s2 = "large" if m == "oracle" else m
            out.append({"config": m + tag, "method": "oracle", "params": {"system2": s2, **extra}})
        elif m == "fs":
            out += [{"config": f"fs@entropy={t:g}{tag}", "method": "fs",
                     "params": {"router": "entropy", "threshold": float(t), **extra}}
                    for t in thresholds]
    return out
