// What System 1 of a translated pair reads in fs and oracle (cross_fast_slow.cpp): its own
// rendering of the prompt, then the output text as tokens of its vocabulary: its own tokens where it
// wrote, and what others wrote (System 2, the guard's hand-over) tokenized as it arrives, once its
// characters are whole (so it reads a writer's split where its vocabulary allows, and nothing is
// tokenized twice). System 2 may rewrite the end of System 1's text (token healing): truncate.
#pragma once
#include <string>
#include <vector>

#include "fsgen/types.hpp"
#include "vocab_bridge.hpp"

namespace fsgen {

class System1Text {
 public:
  System1Text(const VocabBridge& bridge, std::vector<Token> prompt) : bridge_(bridge), prompt_(std::move(prompt)) {}

  void begin();
  size_t size() const { return text_.size(); }  // bytes of output text
  void write(Token t);                          // System 1's own token
  void append(const std::string& bytes) { text_ += bytes; }  // another's: tokenized at the next read
  void truncate(size_t at);                     // drops the text from byte `at` on
  // The prompt and the text's tokens, but for an unfinished character of another's text: valid
  // until the next call.
  const std::vector<Token>& read();
  // Every byte is in tokens (read() covered it).
  bool whole() const { return (ends_.empty() ? 0 : ends_.back()) == text_.size(); }

 private:
  const VocabBridge& bridge_;
  std::vector<Token> prompt_;
  std::vector<Token> seq_;
  std::vector<size_t> ends_;  // where each output token ends in text_
  std::string text_;
};

}  // namespace fsgen
