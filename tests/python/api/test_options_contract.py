"""The options contract: one table in the core, read by signatures, stubs, the CLI and validation."""
from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

import fsgen
from fsgen import _options, _stubs
from helpers import METHODS, REPO, ROUTERS, SYSTEM2, TINY

TABLE = {p["name"]: p for p in fsgen.param_table()}
SAMPLING = dict(temperature=0.7, top_k=5, top_p=0.9, min_p=0.01, seed=3)


def test_signatures_are_the_table():
    for function, for_model in ((fsgen.Pair.generate, False), (fsgen.Pair.stream, False),
                                (fsgen.Model.generate, True), (fsgen.Model.stream, True)):
        sig = inspect.signature(function)
        names = list(sig.parameters)
        assert names[:3] == ["self", "prompt", "messages"]
        expected = [p["name"] for p in _options.parameters(for_model)]
        assert names[3:] == expected
        for name in expected:
            assert sig.parameters[name].default == TABLE[name]["default"]
            assert sig.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert "Parameters" in function.__doc__ and "Raises" in function.__doc__
    # Every table parameter reaches the Pair; the Model has no method and no pair-only parameter.
    assert set(TABLE) == set(inspect.signature(fsgen.Pair.generate).parameters) - {"self", "prompt", "messages"}
    assert "method" not in inspect.signature(fsgen.Model.generate).parameters
    assert "router" not in inspect.signature(fsgen.Model.generate).parameters


def test_committed_stub_matches_the_table():
    committed = (REPO / "python" / "fsgen" / "_api.pyi").read_text(encoding="utf-8")
    assert committed == _stubs.render(), "stale stub: run python -m fsgen._stubs --write python/fsgen/_api.pyi"
    for name in TABLE:
        assert f"        {name}: " in committed
    assert "MethodName = Literal[" + ", ".join(repr(m) for m in METHODS) + "]" in committed


def test_names_come_from_the_core():
    assert tuple(fsgen.methods()) == METHODS == _options.METHOD_NAMES
    assert "budget" in ROUTERS and "contrastive" in SYSTEM2
    assert fsgen.methods()["proxy"]["needs_small_base"]
    assert fsgen.method_params("fs", "budget") == ["router", "system2_share", "system2"]
    assert fsgen.method_params("fs") == ["router", "threshold", "guard", "system2"]
    assert fsgen.method_params("fs", "entropy", "contrastive") == ["router", "threshold", "system2", "alpha", "beta",
                                                                    "variant"]
    assert fsgen.method_params("large") == ["draft", "draft_max"]
    with pytest.raises(fsgen.InvalidArgumentError, match="expected one of"):
        fsgen.method_params("nosuch")


def _contexts():
    """Every (method, router, system2) the table distinguishes."""
    for method in METHODS:
        if method in ("fs", "oracle"):
            for router in ROUTERS:
                for system2 in SYSTEM2:
                    yield method, router, system2
        else:
            yield method, None, None


@pytest.mark.parametrize("method,router,system2", list(_contexts()))
def test_parameters_that_do_not_apply_are_errors(pair, method, router, system2):
    context = dict(method=method)
    if router:
        context.update(router=router, system2=system2)
    applicable = fsgen.method_params(method, router or "entropy", system2 or "large")
    for name, spec in TABLE.items():
        if spec["group"] != "method" or name in applicable or name in context:
            continue
        value = spec["choices"][0] if spec["choices"] else 0.5 if spec["type"] == "float" else 3
        with pytest.raises(fsgen.InvalidArgumentError) as info:
            pair.generate("hello", max_tokens=1, **context, **{name: value})
        message = str(info.value)
        assert f"takes no parameter {name}" in message
        assert f"(its parameters: {', '.join(applicable) or 'none'})" in message
    # Sampling parameters never are "not applicable", greedy or not, and None is the default
    # for exactly the parameters whose default is None.
    for temperature in (0.0, 0.7):
        given = {k: (None if TABLE[k]["default"] is None else v) for k, v in SAMPLING.items()}
        result = pair.generate("hello", max_tokens=2, **context, **dict(given, temperature=temperature))
        assert result.finish_reason in ("length", "eog")


def test_none_is_the_default_only_where_the_default_is_none(model, pair):
    assert model.generate("hello", max_tokens=3, stop=None, draft=None, draft_max=None).tokens == \
        model.generate("hello", max_tokens=3).tokens
    for name in ("max_tokens", "temperature", "top_k", "seed", "trace"):
        with pytest.raises(fsgen.InvalidArgumentError, match=f"{name} must not be None"):
            pair.generate("hello", **{name: None})


def test_router_decides_which_parameters_apply(pair):
    with pytest.raises(fsgen.InvalidArgumentError, match="takes no parameter threshold"):
        pair.generate("hello", method="fs", router="budget", threshold=0.5)
    with pytest.raises(fsgen.InvalidArgumentError, match="takes no parameter system2_share"):
        pair.generate("hello", method="fs", router="entropy", system2_share=0.1)
    with pytest.raises(fsgen.InvalidArgumentError, match="takes no parameter alpha"):
        pair.generate("hello", method="fs", system2="large", alpha=0.2)   # contrastive's, not large's
    pair.generate("hello", max_tokens=2, method="fs", system2="contrastive", alpha=0.2, beta=0.3)
    with pytest.raises(fsgen.InvalidArgumentError, match=r"system2_share must be in \(0, 1\]"):
        pair.generate("hello", method="fs", router="budget", system2_share=0.0)


def test_guard_applies_where_the_plan_guards(pair):
    """One rule for the guard's scope: the table's (method_params) and the call's plan agree, and
    router="never" (System 1 alone) has nothing to guard."""
    from fsgen import _core
    for router in ROUTERS:
        for system2 in SYSTEM2:
            applies = "guard" in fsgen.method_params("fs", router=router, system2=system2)
            kwargs = {"guard": True} if applies else {}
            plan = _core.plan_for(_core.make_options({"method": "fs", "router": router, "system2": system2,
                                                      **kwargs}))
            assert plan["guarded"] == applies, (router, system2)
    assert "guard" not in fsgen.method_params("fs", router="never")
    with pytest.raises(fsgen.InvalidArgumentError, match="takes no parameter guard"):
        pair.generate("hello", method="fs", router="never", guard=True)


def test_stats_keys_are_the_cores_list_and_the_docs():
    import re
    from fsgen import _core
    core = [name for name, _ in _core.stat_fields()]
    assert list(fsgen.Stats.__annotations__) == core
    api = (REPO / "docs" / "API.md").read_text(encoding="utf-8")
    paragraph = api[api.index("`stats` keys"):]
    paragraph = paragraph[:paragraph.index("\n\n")]
    documented = set(re.findall(r"`([a-z0-9_]+)`", paragraph)) - {"stats"}
    assert documented == set(core)


def test_model_takes_no_method(model):
    with pytest.raises(fsgen.InvalidArgumentError, match="takes no method"):
        model.generate("hello", method="large")
    with pytest.raises(fsgen.InvalidArgumentError, match="draft_max with one model needs"):
        model.generate("hello", draft_max=3)
    with pytest.raises(fsgen.InvalidArgumentError, match="ngram"):
        model.generate("hello", draft="model")


@pytest.mark.parametrize("router", ["entropy", "top1", "margin"])
def test_router_rule_is_one_definition_at_ties(pair, router):
    """The study's flags (fsgen._core.route) and the core's routing agree, also exactly at the
    threshold: the first token's feature value is a tie in a rerun with that value as threshold."""
    # guard=False: the router alone decides (the guard's hand-overs follow measured speed).
    first = pair.generate("Once upon a time", method="fs", router=router, guard=False, max_tokens=1, trace=True).trace
    tie = float(getattr(first, router)[0])
    run = pair.generate("Once upon a time", method="fs", router=router, threshold=tie, guard=False, max_tokens=24,
                        trace=True)
    values = getattr(run.trace, router)
    flags = fsgen._core.route(router, np.ascontiguousarray(values, np.float32), tie)
    assert values[0] == np.float32(tie) and not flags[0], "a value at the threshold does not consult"
    assert np.array_equal(flags.astype(bool), run.trace.system2_called)
    # The rule itself: entropy strictly above, top1 and margin strictly below.
    values = np.array([0.25, 0.5, 0.75], np.float32)
    expected = [False, False, True] if router == "entropy" else [True, False, False]
    assert fsgen._core.route(router, values, 0.5).astype(bool).tolist() == expected


BAD_CALLS = [
    dict(),                                                   # neither prompt nor messages
    dict(prompt="hi", messages=[{"role": "user", "content": "hi"}]),
    dict(prompt=""),
    dict(prompt=3),
    dict(messages=[{"role": "user"}]),
    dict(prompt="hi", max_tokens=-1),
    dict(prompt="hi", temperature="warm"),
    dict(prompt="hi", nosuch=1),
    dict(prompt="hi", method="fs", router="budget", threshold=0.5),
    dict(prompt="hi", method="nosuch"),
]


@pytest.mark.parametrize("call", BAD_CALLS, ids=range(len(BAD_CALLS)))
def test_validate_raises_what_generate_raises(model, pair, call):
    for runner in (model, pair):
        with pytest.raises(fsgen.InvalidArgumentError) as generated:
            runner.generate(**call)
        with pytest.raises(fsgen.InvalidArgumentError) as validated:
            runner.validate(**call)
        assert str(validated.value) == str(generated.value)


def test_validate_generates_nothing(model, pair):
    assert model.validate("hello", max_tokens=4, draft="ngram") is None
    assert pair.validate(messages=[{"role": "user", "content": "hi"}], method="fs", router="budget",
                         system2_share=0.2) is None
    assert model.generate("hello", max_tokens=4).stats["n_tokens"] == 4  # the objects stay usable


def test_chunk_source_is_an_int_enum(pair):
    chunks = list(pair.stream("hello", method="fs", router="always", guard=False, max_tokens=4))
    assert chunks and all(isinstance(c.source, fsgen.Source) for c in chunks)
    assert {c.source for c in chunks} <= {fsgen.Source.SYSTEM2} and fsgen.Source.SYSTEM2 == 1
    assert [int(s) for s in fsgen.Source] == [0, 1, 2]


def test_stream_close_reports_errors(tiny_small):
    with fsgen.Model(tiny_small, n_ctx=16, n_threads=1) as m:
        stream = m.stream("hello " * 40)
        with pytest.raises(fsgen.ContextOverflowError):
            stream.close()


def test_flash_attn_is_accepted(tiny_small):
    tokens = []
    for flash_attn in (None, True, False):
        with fsgen.Model(tiny_small, flash_attn=flash_attn, **TINY) as m:
            tokens.append(m.generate("hello world", max_tokens=8).tokens)
    assert tokens[0] == tokens[1] == tokens[2]
    with pytest.raises(fsgen.InvalidArgumentError, match="flash_attn"):
        fsgen.Model(tiny_small, flash_attn="yes")


def test_cli_flags_come_from_the_table():
    out = subprocess.run([sys.executable, "-m", "fsgen.cli", "generate", "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    for name in TABLE:
        if name not in ("stop", "trace"):
            assert "--" + name.replace("_", "-") in out, name
