// What System 1 of a translated pair reads: its own rendering of the prompt, then the output text
// (the large model's tokens) re-tokenized in System 1's vocabulary. Re-tokenizing the whole output
// each round would cost O(n) per round and change System 1's cached tokens behind it, so the
// tokens before a stable boundary are kept: a word start (a piece that begins with a space) before
// the last one in the re-tokenized tail; later text cannot merge across it in a word-splitting
// tokenizer (text without spaces: a token kLongTail from the end). What follows the boundary is
// re-tokenized each round.
#pragma once
#include <string>
#include <vector>

#include "fsgen/types.hpp"
#include "vocab_bridge.hpp"

namespace fsgen {

class CrossReader {
 public:
  CrossReader(const VocabBridge& bridge, std::vector<Token> small_prompt)
      : bridge_(bridge), small_prompt_(std::move(small_prompt)) {}

  // A new generation after the large model's prompt of this many tokens.
  void begin(size_t large_prompt);
  // System 1's tokens for the large sequence (prompt + output): valid until the next call.
  const std::vector<Token>& read(const std::vector<Token>& large_sequence);
  // The large model's output bytes so far (as of the last read).
  const std::string& text() const { return text_; }
  size_t output_tokens() const { return seen_; }
  size_t large_prompt() const { return large_prompt_; }

 private:
  static constexpr size_t kLongTail = 16;
  const VocabBridge& bridge_;
  std::vector<Token> small_prompt_;
  size_t large_prompt_ = 0;
  size_t seen_ = 0;             // output tokens whose bytes are in text_
  std::string text_;            // the output's bytes
  std::vector<Token> stable_;   // System 1's prompt + the output up to `committed_` bytes
  size_t committed_ = 0;
  std::vector<Token> read_;
};

}  // namespace fsgen
