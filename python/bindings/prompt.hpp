// A prompt as Python passes it (text, or (role, content) pairs) converted to the core's Prompt.
// The core checks it where the call starts (Prompt::check: exactly one of the two, not empty).
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fsgen/error.hpp"
#include "fsgen/options.hpp"

namespace fsgen_bindings {

using OptionalText = std::optional<std::string>;
using OptionalMessages = std::optional<std::vector<std::pair<std::string, std::string>>>;

inline std::vector<fsgen::ChatMessage> chat_messages(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::vector<fsgen::ChatMessage> chat;
  for (const auto& [role, content] : pairs) chat.push_back({role, content});
  return chat;
}

inline fsgen::Prompt make_prompt(const OptionalText& text, const OptionalMessages& messages) {
  fsgen::Prompt prompt;
  prompt.text = text;
  if (messages) {
    if (messages->empty()) throw fsgen::InvalidArgumentError("messages is empty");
    prompt.messages = chat_messages(*messages);
  }
  return prompt;
}

}  // namespace fsgen_bindings
