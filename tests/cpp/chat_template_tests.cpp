// C++ tests of chat templates: the GGUF's Jinja template rendered by llama.cpp's engine, the built-in
// templates as the fallback, and the errors.
//   chat_template_tests CHATML.gguf CUSTOM.gguf
// CHATML.gguf carries the ChatML template (which llama.cpp's built-in list knows); CUSTOM.gguf carries
// tinymodels.CUSTOM_TEMPLATE (which it does not).
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "chat_template.hpp"
#include "fsgen/fsgen.hpp"
#include "check.hpp"

namespace {

using fsgen_test::check;

// The TemplateError's message, or "" if f did not throw one.
std::string template_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const fsgen::TemplateError& e) {
    return std::string("TemplateError: ") + e.what();
  } catch (const std::exception& e) {
    return std::string("other: ") + e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const std::vector<fsgen::ChatMessage> kChat = {
    {"system", "  be brief "}, {"user", "hi \xC3\xA9"}, {"assistant", "hello"}, {"user", "more"}};

void test_chatml_model(const std::string& path) {
  fsgen::ModelOptions options;
  options.n_ctx = 256;
  options.n_threads = 1;
  fsgen::Model model = fsgen::Model::load(path, options);
  const std::string& tmpl = model.info().chat_template;
  const fsgen::ChatSpecialTokens special = fsgen::chat_special_tokens(model.vocab());
  check(special.bos == "<|endoftext|>" && special.eos == "<|im_end|>" && !special.add_bos,
        "bos/eos strings and add_bos come from the vocabulary");
  for (bool add : {true, false}) {
    const auto builtin = fsgen::render_builtin_chat_template(tmpl, kChat, add);
    const std::string jinja = fsgen::render_jinja_chat_template(tmpl, kChat, add, special);
    check(builtin.has_value() && *builtin == jinja, "ChatML: the Jinja rendering equals the built-in one");
    check(model.apply_chat_template(kChat, add) == jinja, "Model::apply_chat_template renders the same");
  }
  const std::string chatml = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
  check(model.apply_chat_template({{"user", "hi"}}) == chatml, "ChatML text exactly");
}

void test_custom_model(const std::string& path) {
  fsgen::ModelOptions options;
  options.n_ctx = 256;
  options.n_threads = 1;
  fsgen::Model model = fsgen::Model::load(path, options);
  const std::string& tmpl = model.info().chat_template;
  check(!fsgen::render_builtin_chat_template(tmpl, kChat, true).has_value(),
        "the custom template is not one of llama.cpp's built-in templates");
  const std::string expected =
      "<|endoftext|>[[sys]] be brief\nQ2: hi \xC3\xA9\nA: hello<|im_end|>\nQ4: more\n";
  check(model.apply_chat_template(kChat, false) == expected, "custom template: loops, conditionals, bos/eos");
  check(model.apply_chat_template(kChat, true) == expected + "A:", "add_assistant is add_generation_prompt");
  const std::string refused = template_error([&] { model.apply_chat_template({{"tool", "x"}}); });
  check(contains(refused, "TemplateError") && contains(refused, "refused these messages: unknown role: tool"),
        "raise_exception becomes TemplateError with the template's message: " + refused);
  const std::vector<fsgen::Token> tokens = model.prompt_tokens(fsgen::Prompt::from_messages({{"user", "hi"}}));
  check(model.detokenize(tokens) == "<|endoftext|>Q1: hi\nA:", "generation prompts go through the template");
}

void test_renderer() {
  fsgen::ChatSpecialTokens special;
  special.bos = "<s>";
  special.eos = "</s>";
  const std::string tmpl =
      "{{ bos_token }}{% for m in messages %}{{ m.role }}={{ m.content }};{% endfor %}{{ eos_token }}";
  check(fsgen::render_jinja_chat_template(tmpl, {{"user", "a"}}, true, special) == "<s>user=a;</s>",
        "bos/eos kept when tokenizing does not add them");
  special.add_bos = special.add_eos = true;
  check(fsgen::render_jinja_chat_template(tmpl, {{"user", "a"}}, true, special) == "user=a;",
        "a BOS/EOS the tokenizer adds anyway is not doubled");

  // A template the engine cannot parse, not a built-in one: TemplateError with the parser's message.
  const std::string broken = "{% for m in messages %}{{ m.content }";
  const std::vector<fsgen::ChatMessage> one = {{"user", "a"}};
  const std::string error = template_error([&] { fsgen::render_chat_template(broken, one, true, special, "M"); });
  check(contains(error, "TemplateError") && contains(error, "failed to render") && contains(error, "parser"),
        "a broken template raises TemplateError with the renderer's message: " + error);
  // Broken for Jinja but recognised by llama.cpp (ChatML markers): the built-in path renders it.
  const std::string broken_chatml = "{% for m in messages %}<|im_start|>{{ m.role }";
  check(fsgen::render_chat_template(broken_chatml, one, true, special, "M") ==
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n",
        "the built-in templates are the fallback");
  // A refusal is not second-guessed by the fallback, even for a template the built-in list knows.
  const std::string refusing = "<|im_start|>{{ raise_exception('no, thanks') }}";
  const std::string refusal = template_error([&] { fsgen::render_chat_template(refusing, one, true, special, "M"); });
  check(contains(refusal, "refused these messages: no, thanks"), "raise_exception is final: " + refusal);
  // A runtime error that is not a refusal (an unknown filter) also reports the engine's message.
  const std::string error2 = template_error(
      [&] { fsgen::render_chat_template("{{ messages | no_such_filter }}", one, true, special, "M"); });
  check(contains(error2, "TemplateError") && contains(error2, "no_such_filter"), "unknown filter: " + error2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::printf("usage: chat_template_tests CHATML.gguf CUSTOM.gguf\n");
    return 2;
  }
  try {
    test_renderer();
    test_chatml_model(argv[1]);
    test_custom_model(argv[2]);
  } catch (const std::exception& e) {
    check(false, std::string("unexpected exception: ") + e.what());
  }
  return fsgen_test::report();
}
