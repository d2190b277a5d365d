"""Every typed error: bad files and fault models (ModelLoadError naming the cause, never a crash),
chat templates, context overflow, bad arguments, non-finite logits."""
from __future__ import annotations

import inspect
import math
import subprocess
import sys
import textwrap

import pytest

import fsgen
import tinymodels
from helpers import TINY, import_llama_cpp
from processes import child_env

ERRORS = ["FsgenError", "ModelLoadError", "IncompatibleVocabError", "TemplateError", "ContextOverflowError",
          "GenerationError", "InvalidArgumentError"]


def test_errors_are_importable_from_fsgen():
    for name in ERRORS:
        cls = getattr(fsgen, name)
        assert issubclass(cls, Exception) and issubclass(cls, fsgen.FsgenError)
        assert name in fsgen.__all__
        assert cls.__module__.startswith("fsgen")
    assert issubclass(fsgen.InvalidArgumentError, ValueError)
    from fsgen import errors
    for name in ERRORS:
        assert getattr(errors, name) is getattr(fsgen, name)


# ---- files that are not models ----

def load_error(path) -> str:
    with pytest.raises(fsgen.ModelLoadError) as info:
        fsgen.Model(path, **TINY)
    return str(info.value)


def test_missing_path(tmp_path):
    missing = tmp_path / "nope.gguf"
    message = load_error(missing)
    assert str(missing) in message and "no such file" in message.lower()
    message = load_error(str(missing))
    assert str(missing) in message


def test_directory(tmp_path):
    assert "directory" in load_error(tmp_path)


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    assert "empty" in load_error(empty)


@pytest.mark.parametrize("content", [b"hello, not a model\n", b"GGU", b"\x00" * 64, b"PK\x03\x04" + b"\x00" * 100])
def test_not_gguf(tmp_path, content):
    path = tmp_path / "junk.gguf"
    path.write_bytes(content)
    assert "GGUF" in load_error(path)


def test_damaged_header(tmp_path, tiny_small):
    data = bytearray(tiny_small.read_bytes())
    data[8:16] = (2**62).to_bytes(8, "little")  # absurd tensor count
    path = tmp_path / "damaged.gguf"
    path.write_bytes(bytes(data))
    load_error(path)


@pytest.mark.parametrize("fraction", [0.0005, 0.002, 0.01, 0.05, 0.3, 0.7, 0.999])
def test_truncated_gguf(tmp_path, tiny_small, fraction):
    data = tiny_small.read_bytes()
    cut = max(5, int(len(data) * fraction))
    path = tmp_path / f"truncated_{cut}.gguf"
    path.write_bytes(data[:cut])
    message = load_error(path)
    assert str(path) in message


def test_truncated_by_one_byte(tmp_path, tiny_small):
    path = tmp_path / "short.gguf"
    path.write_bytes(tiny_small.read_bytes()[:-1])
    assert "truncated" in load_error(path)


def test_bad_path_type():
    with pytest.raises(fsgen.InvalidArgumentError):
        fsgen.Model(42)
    with pytest.raises(fsgen.InvalidArgumentError):
        fsgen.Model(None)


# ---- fault models from the test bed ----

@pytest.mark.parametrize("fault, expected", [
    (dict(missing_tensor="blk.1.ffn_up.weight"), "blk.1.ffn_up.weight"),
    (dict(missing_tensor="output_norm.weight"), "output_norm.weight"),
    (dict(wrong_shape="blk.0.attn_k.weight"), "blk.0.attn_k.weight"),
    (dict(arch="nosucharch"), "nosucharch"),
    (dict(declared_layers=3), "3 layers"),
    (dict(n_head=0), "head_count"),
    (dict(n_head=3), "head"),
])
def test_fault_models_name_the_cause(tmp_path, fault, expected):
    path = tinymodels.make_model(tmp_path / "fault.gguf", **fault)
    message = load_error(path)
    assert str(path) in message
    assert expected in message.replace(str(path), ""), message


def test_too_many_layers_is_refused_without_aborting(tmp_path):
    """block_count=1000 made llama.cpp abort the process (GGML_ASSERT); fsgen refuses it first.
    In a subprocess, so that a regression cannot take the test session down."""
    path = tinymodels.make_model(tmp_path / "layers.gguf", declared_layers=1000)
    code = textwrap.dedent(f"""
        import fsgen
        try:
            fsgen.Model({str(path)!r}, n_ctx=64, n_threads=1)
        except fsgen.ModelLoadError as exc:
            print("ModelLoadError:", exc)
        else:
            print("LOADED")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=child_env())
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-2000:]}"
    assert done.stdout.startswith("ModelLoadError:"), done.stdout
    assert "1000" in done.stdout.replace(str(path), "")  # the declared layer count is named


def test_load_errors_name_the_cause_after_llama_cpp_is_imported(tmp_path):
    """llama-cpp-python installs its own llama.cpp log callback when imported; fsgen must still
    capture llama.cpp's reason for a failed load (and stay quiet). In a subprocess: fresh state."""
    import_llama_cpp()
    from helpers import fsgen_llama_lib_dir
    path = tinymodels.make_model(tmp_path / "missing.gguf", missing_tensor="blk.1.ffn_up.weight")
    code = textwrap.dedent(f"""
        import os, fsgen
        fsgen.Model({str(tinymodels.make_model(tmp_path / "ok.gguf"))!r}, n_ctx=64, n_threads=1)
        os.environ["LLAMA_CPP_LIB_PATH"] = {str(fsgen_llama_lib_dir())!r}
        import llama_cpp
        try:
            fsgen.Model({str(path)!r}, n_ctx=64, n_threads=1)
        except fsgen.ModelLoadError as exc:
            print("ModelLoadError:", exc)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=child_env())
    assert done.returncode == 0, done.stderr[-2000:]
    assert "blk.1.ffn_up.weight" in done.stdout, done.stdout
    assert "llama_model_loader" not in done.stderr, "llama.cpp's log leaked to stderr"


def test_nan_weights_raise_generation_error(tmp_path, tiny_small):
    path = tinymodels.make_model(tmp_path / "nan.gguf", nan_weights=True)
    with fsgen.Model(path, **TINY) as m:
        for _ in range(2):  # and again: the model stays usable for the next call
            with pytest.raises(fsgen.GenerationError, match="non-finite"):
                m.generate("hello", max_tokens=4)
        with pytest.raises(fsgen.GenerationError):
            list(m.stream("hello", max_tokens=4))
        assert m.generate("hello", max_tokens=0).tokens == []
    # In a pair: whichever role the broken model plays; the healthy model still works after.
    with fsgen.Pair(tiny_small, path, **TINY) as pair:
        for method in ("large", "speculative", "fs", "oracle", "contrastive"):
            with pytest.raises(fsgen.GenerationError):
                pair.generate("hello", method=method, router="always", max_tokens=4) if method == "fs" \
                    else pair.generate("hello", method=method, max_tokens=4)
        assert len(pair.generate("hello", method="small", max_tokens=4).tokens) == 4
    with fsgen.Pair(path, tiny_small, **TINY) as pair:
        with pytest.raises(fsgen.GenerationError):
            pair.generate("hello", method="speculative", draft_max=3, max_tokens=4)
        assert len(pair.generate("hello", method="large", max_tokens=4).tokens) == 4


# ---- chat templates ----

def test_no_template(tiny_factory):
    path = tiny_factory("tiny_no_template", seed=0, chat_template=None)
    with fsgen.Model(path, **TINY) as m:
        assert not m.info["chat_template"]
        with pytest.raises(fsgen.TemplateError, match="no chat template"):
            m.generate(messages=[{"role": "user", "content": "hi"}], max_tokens=4)
        with pytest.raises(fsgen.TemplateError):
            m.apply_chat_template([{"role": "user", "content": "hi"}])
        with pytest.raises(fsgen.TemplateError):
            list(m.stream(messages=[{"role": "user", "content": "hi"}], max_tokens=4))
        assert len(m.generate("hi", max_tokens=4).tokens) == 4


def test_template_that_cannot_render(tiny_factory):
    path = tiny_factory("tiny_broken_template", seed=0, chat_template="{% for m in messages %}{{ m.content }")
    with fsgen.Model(path, **TINY) as m:
        with pytest.raises(fsgen.TemplateError, match="failed to render"):
            m.generate(messages=[{"role": "user", "content": "hi"}], max_tokens=4)


# ---- context overflow ----

def test_prompt_longer_than_the_context(tiny_small, tiny_large):
    with fsgen.Model(tiny_small, n_ctx=32, n_threads=1) as m:
        prompt = "hello world " * 40
        n = len(m.tokenize(prompt))
        assert n > 32
        with pytest.raises(fsgen.ContextOverflowError) as info:
            m.generate(prompt, max_tokens=4)
        assert str(n) in str(info.value)
        with pytest.raises(fsgen.ContextOverflowError):
            list(m.stream(prompt, max_tokens=4))
        # Exactly n_ctx tokens leaves no room either; one fewer does.
        exact = m.detokenize(m.tokenize(prompt)[:32])
        assert len(m.tokenize(exact)) == 32
        with pytest.raises(fsgen.ContextOverflowError):
            m.generate(exact, max_tokens=4)
        fits = m.detokenize(m.tokenize(prompt)[:31])
        assert len(m.generate(fits, max_tokens=4).tokens) == 1
        # The model is fine afterwards.
        assert len(m.generate("hello", max_tokens=4).tokens) == 4
    with fsgen.Pair(tiny_small, tiny_large, n_ctx=32, n_threads=1) as pair:
        for method in ("small", "large", "speculative", "fs", "oracle", "contrastive"):
            with pytest.raises(fsgen.ContextOverflowError):
                pair.generate(prompt, method=method, max_tokens=4)
        assert len(pair.generate("hello", max_tokens=4).tokens) == 4


# ---- bad arguments (conftest's `model` and `pair`) ----

BAD_SAMPLING = [
    dict(max_tokens=-1), dict(max_tokens=1.5), dict(max_tokens="4"), dict(max_tokens=None),
    dict(temperature=-0.1), dict(temperature=math.nan), dict(temperature=math.inf), dict(temperature="hot"),
    dict(top_p=0.0), dict(top_p=1.5), dict(top_p=-0.1), dict(top_p=math.nan),
    dict(min_p=-0.1), dict(min_p=1.5), dict(min_p=math.nan),
    dict(seed=-1), dict(seed=0.5),
    dict(stop=""), dict(stop=[""]), dict(stop=["ok", 3]), dict(stop=5),
]


@pytest.mark.parametrize("kwargs", BAD_SAMPLING, ids=repr)
def test_bad_sampling_arguments(model, pair, kwargs):
    for call in (lambda: model.generate("hello", **kwargs), lambda: model.stream("hello", **kwargs),
                 lambda: pair.generate("hello", method="speculative", **kwargs)):
        with pytest.raises(fsgen.InvalidArgumentError) as info:
            call()
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("kwargs", [
    dict(method="nosuch"), dict(method=None), dict(method="fs", router="nosuch"), dict(method="oracle", router=3),
    dict(method="fs", system2="nosuch"), dict(method="fs", threshold=math.nan), dict(method="fs", threshold=math.inf),
    dict(method="oracle", threshold="high"), dict(method="contrastive", variant="nosuch"),
    dict(method="contrastive", alpha=0.0), dict(method="contrastive", alpha=1.5), dict(method="contrastive", beta=-1),
    dict(method="contrastive", beta=math.nan), dict(method="proxy", alpha=math.nan),
    dict(method="speculative", draft_max=0), dict(method="speculative", draft_max=-2),
    dict(method="speculative", draft_max=2.5), dict(method="speculative", draft_p_min=1.5),
    dict(method="speculative", draft_p_min=math.nan),
    # a parameter the method does not take, or a typo
    dict(method="small", draft_max=3), dict(method="speculative", drafts_max=3), dict(method="large", router="always"),
    dict(method="speculative", threshold=0.5), dict(method="contrastive", router="always"),
    dict(method="proxy", beta=0.5), dict(method="fs", draft_max=2), dict(method="speculative", temprature=0.5),
], ids=repr)
def test_bad_method_arguments(pair, kwargs):
    with pytest.raises(fsgen.InvalidArgumentError) as info:
        pair.generate("hello", max_tokens=4, **kwargs)
    assert isinstance(info.value, ValueError)
    with pytest.raises(fsgen.InvalidArgumentError):
        pair.stream("hello", max_tokens=4, **kwargs)


def test_unknown_parameter_is_named(pair):
    with pytest.raises(fsgen.InvalidArgumentError, match="drafts_max"):
        pair.generate("hello", method="speculative", drafts_max=3)
    with pytest.raises(fsgen.InvalidArgumentError, match="nosuch"):
        pair.generate("hello", method="nosuch")


@pytest.mark.parametrize("kwargs", [
    dict(), dict(prompt=""), dict(prompt="hi", messages=[{"role": "user", "content": "hi"}]),
    dict(messages=[]), dict(messages="hi"), dict(messages=[{"role": "user"}]), dict(messages=[{"content": "hi"}]),
    dict(messages=[{"role": "user", "content": 3}]), dict(messages=[("user", "hi")]),
    dict(prompt=b"bytes"), dict(prompt=["hi"]), dict(prompt="\ud800 lone surrogate"),
], ids=repr)
def test_bad_prompts(model, pair, kwargs):
    with pytest.raises(fsgen.InvalidArgumentError):
        model.generate(**kwargs, max_tokens=4)
    with pytest.raises(fsgen.InvalidArgumentError):
        pair.generate(**kwargs, method="speculative", max_tokens=4)
    with pytest.raises(fsgen.InvalidArgumentError):
        pair.stream(**kwargs, method="fs", max_tokens=4)


@pytest.mark.parametrize("ids", [[-1], [299], [1, 2, 10**6], [2**40], ["a"], [1.5]], ids=repr)
def test_detokenize_invalid_ids(model, ids):
    with pytest.raises(fsgen.InvalidArgumentError):
        model.detokenize(ids)


def test_tokenize_bad_text(model):
    with pytest.raises(fsgen.InvalidArgumentError):
        model.tokenize(b"bytes")
    with pytest.raises(fsgen.InvalidArgumentError):
        model.tokenize("\udcff")


@pytest.mark.parametrize("kwargs", [
    dict(n_ctx=0), dict(n_ctx=-5), dict(n_ctx=2**30), dict(n_ctx=1.5), dict(n_threads=1025), dict(n_threads=-1),
    dict(verbose=1), dict(flash_attn="yes"), dict(prompt_cache_mib=1.5), dict(rpc_timeout=0),
    dict(n_batch=0), dict(n_gpu_layers=-2), dict(n_ctx="4096"),
], ids=repr)
def test_bad_model_options(tiny_small, kwargs):
    with pytest.raises(fsgen.InvalidArgumentError):
        fsgen.Model(tiny_small, **kwargs)


def test_bad_pair_options(tiny_small, tiny_large):
    with pytest.raises(fsgen.InvalidArgumentError):
        fsgen.Pair(tiny_small, tiny_large, n_ctx=0)
    with pytest.raises(fsgen.InvalidArgumentError, match="n_ctxx"):
        fsgen.Pair(tiny_small, tiny_large, n_ctxx=64)
    with pytest.raises(fsgen.ModelLoadError):
        fsgen.Pair(tiny_small, tiny_large.parent / "missing.gguf", **TINY)


def test_arguments_are_checked_before_work_starts(model):
    """A bad argument leaves no generation running: the next call works at once."""
    with pytest.raises(fsgen.InvalidArgumentError):
        model.generate("hello", temperature=-1)
    assert len(model.generate("hello", max_tokens=3).tokens) == 3


def test_model_options_are_the_core_tables(tiny_small):
    """Model's keyword options are the core's model option table's, checked there as for the C API
    (its n_threads 0: fsgen picks)."""
    names = set(inspect.signature(fsgen.Model).parameters) - {"path", "calibrate"}
    assert names == set(fsgen._core.model_option_names())
    with fsgen.Model(tiny_small, n_threads=0, n_ctx=64) as m:
        assert len(m.generate("hello", max_tokens=2).tokens) == 2
