// Two vocabularies side by side, for a pair whose tokenizers differ (a "translated" pair): which
// tokens both hold (the same decoded bytes, llama_token_to_piece, not the stored text, which
// spells bytes differently per tokenizer: "Ġ" vs "▁"), and text written as a continuation in
// either model's tokens. Drafts cross between the vocabularies through it (drafts/slem.cpp,
// drafts/tli.cpp); the large model verifies every token, so how well this maps changes the
// acceptance, never the output.
#pragma once
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "fsgen/model.hpp"
#include "fsgen/types.hpp"

namespace fsgen {

class VocabBridge {
 public:
  VocabBridge(const Model& small, const Model& large);

  const Model& small() const { return small_; }
  const Model& large() const { return large_; }
  const std::string& small_piece(Token t) const { return small_pieces_[t]; }
  const std::string& large_piece(Token t) const { return large_pieces_[t]; }
  // The large model's id with the same bytes as System 1's id t (-1: none). Control tokens map
  // only end-of-generation to end-of-generation (their text is no text).
  Token to_large(Token t) const { return to_large_[t]; }
  int shared_tokens() const { return shared_; }
  // shared / (|small| + |large| - shared): 1 for the same tokens under other ids.
  double overlap() const { return overlap_; }

  // `text` (valid UTF-8) in the model's tokens as it would read after earlier text: no BOS, special
  // tokens as plain text, and no prefix space of SentencePiece's (which adds one at the start of
  // every tokenization).
  std::vector<Token> fragment(const Model& model, const std::string& text) const;
  std::string bytes(const Model& model, const Token* ids, size_t n) const;
  // As fragment, for any bytes: what is no valid UTF-8 is spelled with the model's byte tokens
  // (byte-level BPE writes such bytes, a character cut by a stray byte). Exact where the model
  // has the byte tokens it needs; otherwise the closest there is.
  std::vector<Token> spell(const Model& model, const std::string& text) const;

  // The large model's text tokens whose piece starts with `prefix` (not control tokens), as a
  // range of a list sorted by piece: built on first use, then a binary search.
  std::pair<const Token*, const Token*> large_tokens_with_prefix(const std::string& prefix) const;

 private:
  const std::string& piece_of(const Model& model, Token t) const;

  const Model& small_;
  const Model& large_;
  std::vector<std::string> small_pieces_, large_pieces_;
  std::vector<Token> to_large_;
  std::vector<Token> small_byte_, large_byte_;  // per byte value: the token spelling it alone (-1: none)
  int shared_ = 0;
  double overlap_ = 0;
  mutable std::once_flag sorted_once_;
  mutable std::vector<Token> large_by_piece_;
};

// The longest prefix of `bytes` that ends on a whole UTF-8 character.
size_t complete_utf8_prefix(const std::string& bytes);

}  // namespace fsgen
