// Chat templates: the model's own Jinja template rendered by llama.cpp's Jinja engine (common/jinja),
// with llama.cpp's built-in templates (llama_chat_apply_template) as the fallback.
//
// Order: Jinja first. The GGUF's template is what the model's authors wrote and what Hugging Face
// transformers and llama-server (Jinja on by default) render, so fsgen, the server and those tools
// build the same prompt for the same messages. The built-in path recognises a fixed list of templates
// by their look and re-implements them in C++, which drops what a template adds beyond the common
// format (e.g. Qwen2.5's and SmolLM2's default system message). It stays as the fallback for a
// template the Jinja engine cannot parse or run; a template that refuses the messages on purpose
// (raise_exception) is not second-guessed.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "fsgen/options.hpp"

struct llama_vocab;

namespace fsgen {

// What a template sees as bos_token / eos_token, and whether tokenizing adds them anyway.
struct ChatSpecialTokens {
  std::string bos;  // empty if the vocabulary has none
  std::string eos;
  bool add_bos = false;  // the tokenizer prepends BOS (llama_vocab_get_add_bos)
  bool add_eos = false;  // the tokenizer appends EOS
};

ChatSpecialTokens chat_special_tokens(const llama_vocab* vocab);

// Renders `tmpl` for the messages: Jinja first, then llama.cpp's built-in templates. A BOS (EOS) the
// template writes at the start (end) is removed when tokenizing adds it anyway, so the prompt carries
// one. `what` names the model in error messages. Throws TemplateError: the template raised an
// exception (its message), or it failed in the Jinja engine and llama.cpp does not recognise it (the
// engine's message).
std::string render_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt, const ChatSpecialTokens& special,
                                 const std::string& what);

// The two paths on their own (tests compare them).
// Jinja only; throws TemplateError with the engine's (or the template's) message.
std::string render_jinja_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt, const ChatSpecialTokens& special);
// llama.cpp's built-in templates; nullopt if it does not recognise `tmpl`.
std::optional<std::string> render_builtin_chat_template(const std::string& tmpl,
                                                        const std::vector<ChatMessage>& messages,
                                                        bool add_generation_prompt);

}  // namespace fsgen
