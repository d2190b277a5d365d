"""The same engine gives the same answer: fsgen's greedy output equals llama-cpp-python's, token for
token, on a real quantized model (SmolLM2-135M Q4_1), with llama-cpp-python running on fsgen's own
libllama and the same context settings (n_ctx, n_batch, n_ubatch, flash attention, threads,
special-token parsing). Also on the tiny f32 and quantized bed."""
from __future__ import annotations

from pathlib import Path

import pytest

import fsgen
from helpers import Reference, fsgen_llama_lib_dir, import_llama_cpp

N_CTX = 512
THREADS = 1  # one thread: ggml spin-waits, and more threads than free cores is many times slower
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "List three prime numbers and explain why they are prime.<|im_end|>\n<|im_start|>assistant\n",
]
MAX_TOKENS = 24


def test_llama_cpp_runs_fsgens_libllama():
    llama_cpp = import_llama_cpp()
    loaded = Path(llama_cpp.llama_cpp._lib._name).resolve()
    assert loaded.parent == fsgen_llama_lib_dir().resolve()
    assert loaded.name.startswith("libllama")


@pytest.fixture(scope="module")
def engines(smollm2):
    import_llama_cpp()
    ref = Reference(smollm2, n_ctx=N_CTX, n_threads=THREADS, n_batch=512)
    model = fsgen.Model(smollm2, n_ctx=N_CTX, n_threads=THREADS, n_batch=ref.n_batch)
    yield model, ref
    model.close()
    ref.close()


@pytest.mark.parametrize("prompt", PROMPTS)
def test_smollm2_greedy_equals_llama_cpp(engines, prompt):
    model, ref = engines
    tokens = model.tokenize(prompt)
    assert tokens == ref.tokenize(prompt)  # special tokens parsed the same way
    expected = ref.greedy(tokens, MAX_TOKENS)
    r = model.generate(prompt, max_tokens=MAX_TOKENS)
    assert r.tokens == expected
    assert r.finish_reason == ("length" if len(expected) == MAX_TOKENS else "eog")
    assert r.text == model.detokenize(r.tokens)


def test_smollm2_chat_template_equals_llama_cpp(engines):
    model, ref = engines
    # With a system message given, SmolLM2's Jinja template (fsgen renders it) and llama.cpp's
    # built-in ChatML agree; without one, the template adds its default system message and the
    # built-in does not (test_templates compares that case with jinja2).
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}]
    prompt = model.apply_chat_template(messages)
    template = ref.llm.metadata["tokenizer.chat_template"]
    assert template == model.info["chat_template"]
    llama_cpp = ref.llama_cpp
    # llama.cpp's built-in template engine, through llama-cpp-python's binding of it.
    import ctypes
    chat = (llama_cpp.llama_chat_message * 2)(llama_cpp.llama_chat_message(b"system", b"Be brief."),
                                              llama_cpp.llama_chat_message(b"user", b"What is 2 + 2?"))
    buffer = ctypes.create_string_buffer(4096)
    n = llama_cpp.llama_chat_apply_template(template.encode(), chat, 2, True, buffer, len(buffer))
    assert 0 < n < len(buffer)
    assert prompt == buffer.raw[:n].decode()
    assert model.generate(messages=messages, max_tokens=16).tokens == ref.greedy(model.tokenize(prompt), 16)


@pytest.mark.parametrize("fixture", ["tiny_small", "tiny_large", "tiny_q8", "tiny_q4"])
def test_tiny_models_greedy_equals_llama_cpp(request, fixture):
    path = request.getfixturevalue(fixture)
    import_llama_cpp()
    ref = Reference(path, n_ctx=256, n_threads=1, n_batch=256)
    try:
        with fsgen.Model(path, n_ctx=256, n_threads=1, n_batch=256) as model:
            for prompt in ("hello world", "Once upon a time, in a land far away", "x"):
                tokens = model.tokenize(prompt)
                assert tokens == ref.tokenize(prompt)
                assert model.generate(prompt, max_tokens=48).tokens == ref.greedy(tokens, 48)
    finally:
        ref.close()
