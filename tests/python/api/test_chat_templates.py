"""Chat templates: the GGUF's own Jinja template rendered in the core (llama.cpp's Jinja engine), with
llama.cpp's built-in templates as the fallback; a template that fails or refuses raises TemplateError."""
from __future__ import annotations

import pytest

import fsgen
import tinymodels
from helpers import CHATML, TINY, collect, skip_or_fail

CHAT = [{"role": "system", "content": "  be brief "}, {"role": "user", "content": "hi \u00e9"},
        {"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"}]
# tinymodels.CUSTOM_TEMPLATE for CHAT, with the tiny vocabulary's BOS <|endoftext|> and EOS <|im_end|>.
CUSTOM_RENDERED = "<|endoftext|>[[sys]] be brief\nQ2: hi \u00e9\nA: hello<|im_end|>\nQ4: more\n"


@pytest.fixture(scope="module")
def custom_path(tiny_factory):
    return tiny_factory("tiny_custom_template", seed=0, chat_template=tinymodels.CUSTOM_TEMPLATE)


@pytest.fixture(scope="module")
def custom(custom_path):
    with fsgen.Model(custom_path, **TINY) as model:
        yield model


def test_a_template_llama_cpp_does_not_know_renders(custom):
    assert custom.info["chat_template"] == tinymodels.CUSTOM_TEMPLATE
    assert custom.apply_chat_template(CHAT, add_assistant=False) == CUSTOM_RENDERED
    assert custom.apply_chat_template(CHAT) == CUSTOM_RENDERED + "A:"


def test_generation_uses_the_rendered_template(custom):
    messages = [{"role": "user", "content": "hello world"}]
    prompt = custom.apply_chat_template(messages)
    assert prompt == "<|endoftext|>Q1: hello world\nA:"
    r = custom.generate(messages=messages, max_tokens=12)
    assert r.tokens == custom.generate(prompt, max_tokens=12).tokens
    assert r.stats["n_prompt_tokens"] == len(custom.tokenize(prompt))
    assert collect(custom.stream(messages=messages, max_tokens=12))[0] == r.text


def test_raise_exception_is_a_template_error(custom):
    with pytest.raises(fsgen.TemplateError, match="unknown role: tool"):
        custom.apply_chat_template([{"role": "tool", "content": "x"}])
    with pytest.raises(fsgen.TemplateError, match="refused"):
        custom.generate(messages=[{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"}],
                        max_tokens=4)
    assert custom.apply_chat_template([{"role": "user", "content": "hi"}])  # still usable


def test_chatml_renders_as_the_built_in_template(tiny_small):
    # The ChatML text llama.cpp's built-in template writes (what fsgen rendered before Jinja).
    with fsgen.Model(tiny_small, **TINY) as m:
        expected = "".join(CHATML.format(**msg) for msg in CHAT)
        assert m.apply_chat_template(CHAT, add_assistant=False) == expected
        assert m.apply_chat_template(CHAT) == expected + "<|im_start|>assistant\n"


def test_broken_template_raises_template_error(tiny_factory):
    path = tiny_factory("tiny_broken_template", seed=0, chat_template="{% for m in messages %}{{ m.content }")
    with fsgen.Model(path, **TINY) as m:
        with pytest.raises(fsgen.TemplateError, match="failed to render") as info:
            m.apply_chat_template([{"role": "user", "content": "hi"}])
        assert "parser" in str(info.value)  # the Jinja engine's own message
        with pytest.raises(fsgen.TemplateError):
            m.generate(messages=[{"role": "user", "content": "hi"}], max_tokens=4)
        assert len(m.generate("hi", max_tokens=4).tokens) == 4


def test_built_in_templates_are_the_fallback(tiny_factory):
    # Jinja cannot parse it, but llama.cpp recognises ChatML's markers and renders it itself.
    path = tiny_factory("tiny_broken_chatml", seed=0, chat_template="{% for m in messages %}<|im_start|>{{ m.role }")
    with fsgen.Model(path, **TINY) as m:
        assert m.apply_chat_template([{"role": "user", "content": "hi"}]) == \
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_pair_renders_the_large_models_template(custom_path, tiny_small):
    messages = [{"role": "user", "content": "hello world"}]
    with fsgen.Pair(tiny_small, custom_path, **TINY) as pair:
        prompt = "<|endoftext|>Q1: hello world\nA:"
        r = pair.generate(messages=messages, method="speculative", max_tokens=8)
        assert r.tokens == pair.generate(prompt, method="speculative", max_tokens=8).tokens


def reference_render(template: str, messages: list, add_generation_prompt: bool, bos: str, eos: str) -> str:
    """The template rendered as Hugging Face transformers renders it (jinja2, trim_blocks and
    lstrip_blocks, loop controls, raise_exception)."""
    try:
        import jinja2.sandbox
    except ImportError:
        skip_or_fail("jinja2 is not installed (pip install '.[test]')")

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                       extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                            bos_token=bos, eos_token=eos)


REFERENCE_CHATS = [CHAT, [{"role": "user", "content": "Write a poem"}],
                   [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]]


@pytest.mark.parametrize("fixture", ["custom_path", "tiny_small"])
def test_tiny_templates_render_as_jinja2_does(request, fixture):
    with fsgen.Model(request.getfixturevalue(fixture), **TINY) as m:
        template = m.info["chat_template"]
        for chat in REFERENCE_CHATS:
            for add in (True, False):
                expected = reference_render(template, chat, add, "<|endoftext|>", "<|im_end|>")
                assert m.apply_chat_template(chat, add_assistant=add) == expected


def test_smollm2_renders_as_jinja2_does(smollm2):
    # A real template with a default system message (which llama.cpp's built-in ChatML leaves out).
    with fsgen.Model(smollm2, n_ctx=256, n_threads=1) as m:
        template = m.info["chat_template"]
        assert "bos_token" not in template and "eos_token" not in template
        for chat in REFERENCE_CHATS:
            expected = reference_render(template, chat, True, "", "")
            assert m.apply_chat_template(chat) == expected
        assert "<|im_start|>system\n" in m.apply_chat_template([{"role": "user", "content": "hi"}])
