// Chat templates through llama.cpp's Jinja engine, with its built-in templates as the fallback
// (the order is explained in chat_template.hpp).
#include "chat_template.hpp"

#include <llama.h>

#include <map>
#include <memory>
#include <mutex>

#include "fsgen/error.hpp"
#include "jinja/caps.h"
#include "jinja/lexer.h"
#include "jinja/parser.h"
#include "jinja/runtime.h"
#include "jinja/value.h"
#include "json.h"

namespace fsgen {
namespace {

// A parsed template and what it expects of message content. Executing a program does not change it
// (llama.cpp shares one across server slots), so one copy serves every thread.
struct CompiledTemplate {
  jinja::program program;
  jinja::caps caps;
  std::string source;  // as the lexer kept it, for the engine's error locations
};

// Parsing and probing the capabilities run the template several times: do it once per template text.
// The cache is small because a process holds a few models; past the bound it starts over.
std::shared_ptr<const CompiledTemplate> compile(const std::string& tmpl) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const CompiledTemplate>> cache;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = cache.find(tmpl);
    if (it != cache.end()) return it->second;
  }
  auto compiled = std::make_shared<CompiledTemplate>();
  jinja::lexer lexer;
  jinja::lexer_result tokens = lexer.tokenize(tmpl);
  compiled->program = jinja::parse_from_tokens(tokens);
  compiled->source = tokens.source;
  compiled->caps = jinja::caps_get(compiled->program);
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() >= 16) cache.clear();
  cache.emplace(tmpl, compiled);
  return compiled;
}

// The messages as the template expects them: plain strings, or a list of text parts for templates
// that only read typed content (as llama-server hands them over).
common_json messages_json(const std::vector<ChatMessage>& messages, const jinja::caps& caps) {
  const bool typed_only = caps.supports_typed_content && !caps.supports_string_content;
  common_json out = common_json::array();
  for (const ChatMessage& m : messages) {
    common_json msg = common_json::object();
    msg["role"] = m.role;
    if (typed_only) {
      common_json parts = common_json::array();
      parts.push_back({{"type", "text"}, {"text", m.content}});
      msg["content"] = parts;
    } else {
      msg["content"] = m.content;
    }
    out.push_back(msg);
  }
  return out;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return !prefix.empty() && s.compare(0, prefix.size(), prefix) == 0;
}
bool ends_with(const std::string& s, const std::string& suffix) {
  return !suffix.empty() && s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct JinjaOutcome {
  std::optional<std::string> text;
  std::string error;     // the engine's message when text is empty
  bool refused = false;  // the template called raise_exception
};

JinjaOutcome try_jinja(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                       bool add_generation_prompt, const ChatSpecialTokens& special) {
  JinjaOutcome outcome;
  try {
    const auto compiled = compile(tmpl);
    jinja::context ctx(compiled->source);
    common_json input = common_json::object();
    input["messages"] = messages_json(messages, compiled->caps);
    input["bos_token"] = special.bos;
    input["eos_token"] = special.eos;
    input["add_generation_prompt"] = add_generation_prompt;
    jinja::global_from_json(ctx, input, /*mark_input=*/false);
    // raise_exception is the template refusing the input (e.g. roles that do not alternate): note
    // it, so that such a refusal is reported as it is instead of falling back to the built-in path.
    auto refusal = std::make_shared<std::optional<std::string>>();
    const jinja::func_handler raise = [refusal](const jinja::func_args& args) -> jinja::value {
      args.ensure_count(1, 1);
      *refusal = args.get_pos(0)->as_string().str();
      throw jinja::raised_exception(**refusal);
    };
    ctx.set_val("raise_exception", jinja::mk_val<jinja::value_func>("raise_exception", raise));
    try {
      jinja::runtime runtime(ctx);
      const jinja::value results = runtime.execute(compiled->program);
      std::string text = jinja::runtime::gather_string_parts(results)->as_string().str();
      // Tokenizing adds BOS/EOS where the vocabulary says so: do not let the template's copy double it.
      if (special.add_bos && starts_with(text, special.bos)) text.erase(0, special.bos.size());
      if (special.add_eos && ends_with(text, special.eos)) text.erase(text.size() - special.eos.size());
      outcome.text = std::move(text);
    } catch (const std::exception& e) {
      outcome.refused = refusal->has_value();
      outcome.error = outcome.refused ? **refusal : std::string(e.what());
    }
  } catch (const std::exception& e) {
    outcome.error = e.what();
  }
  if (!outcome.refused) {
    // The engine starts its runtime messages with a rule on a line of its own.
    const size_t start = outcome.error.find_first_not_of("\n-");
    outcome.error.erase(0, start == std::string::npos ? 0 : start);
  }
  return outcome;
}

}  // namespace

ChatSpecialTokens chat_special_tokens(const llama_vocab* vocab) {
  const auto text = [vocab](llama_token token) -> std::string {
    if (token == LLAMA_TOKEN_NULL) return {};
    char buf[256];
    const int32_t n = llama_token_to_piece(vocab, token, buf, sizeof(buf), 0, true);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  };
  ChatSpecialTokens special;
  special.bos = text(llama_vocab_bos(vocab));
  special.eos = text(llama_vocab_eos(vocab));
  special.add_bos = llama_vocab_get_add_bos(vocab);
  special.add_eos = llama_vocab_get_add_eos(vocab);
  return special;
}

std::string render_jinja_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt, const ChatSpecialTokens& special) {
  JinjaOutcome outcome = try_jinja(tmpl, messages, add_generation_prompt, special);
  if (!outcome.text) throw TemplateError(outcome.error);
  return std::move(*outcome.text);
}

std::optional<std::string> render_builtin_chat_template(const std::string& tmpl,
                                                        const std::vector<ChatMessage>& messages,
                                                        bool add_generation_prompt) {
  std::vector<llama_chat_message> chat;
  size_t total = 0;
  for (const auto& m : messages) {
    chat.push_back({m.role.c_str(), m.content.c_str()});
    total += m.role.size() + m.content.size();
  }
  std::vector<char> buf(2 * total + 1024);
  int32_t n = llama_chat_apply_template(tmpl.c_str(), chat.data(), chat.size(), add_generation_prompt,
                                        buf.data(), static_cast<int32_t>(buf.size()));
  if (n > static_cast<int32_t>(buf.size())) {
    buf.resize(static_cast<size_t>(n));
    n = llama_chat_apply_template(tmpl.c_str(), chat.data(), chat.size(), add_generation_prompt, buf.data(),
                                  static_cast<int32_t>(buf.size()));
  }
  if (n < 0) return std::nullopt;
  return std::string(buf.data(), static_cast<size_t>(n));
}

std::string render_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt, const ChatSpecialTokens& special,
                                 const std::string& what) {
  JinjaOutcome outcome = try_jinja(tmpl, messages, add_generation_prompt, special);
  if (outcome.text) return std::move(*outcome.text);
  if (outcome.refused) {
    throw TemplateError("the chat template of " + what + " refused these messages: " + outcome.error);
  }
  if (auto text = render_builtin_chat_template(tmpl, messages, add_generation_prompt)) return std::move(*text);
  throw TemplateError("the chat template of " + what +
                      " failed to render, and it is not one of llama.cpp's built-in templates: " + outcome.error);
}

}  // namespace fsgen
