#include "vocab_bridge.hpp"

#include <llama.h>

#include <algorithm>
#include <string_view>
#include <type_traits>
#include <unordered_map>

namespace fsgen {
namespace {

std::vector<std::string> pieces_of(const Model& model) {
  std::vector<std::string> out(static_cast<size_t>(model.info().n_vocab));
  for (size_t t = 0; t < out.size(); ++t) out[t] = model.piece(static_cast<Token>(t));
  return out;
}

bool is_control(const llama_vocab* vocab, Token t) {
  return (llama_vocab_get_attr(vocab, t) & (LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_UNKNOWN)) != 0;
}

std::vector<Token> raw_tokenize(const Model& model, const std::string& text) {
  std::vector<Token> ids(text.size() + 8);
  int32_t n = llama_tokenize(model.vocab(), text.data(), static_cast<int32_t>(text.size()), ids.data(),
                             static_cast<int32_t>(ids.size()), false, false);
  if (n < 0) {
    ids.resize(static_cast<size_t>(-n));
    n = llama_tokenize(model.vocab(), text.data(), static_cast<int32_t>(text.size()), ids.data(),
                       static_cast<int32_t>(ids.size()), false, false);
  }
  ids.resize(static_cast<size_t>(std::max(0, n)));
  return ids;
}

}  // namespace

size_t complete_utf8_prefix(const std::string& bytes) {
  size_t i = bytes.size();
  // Step back over at most 3 continuation bytes to the lead byte of the last character.
  for (int back = 0; back < 4 && i > 0; ++back) {
    const unsigned char c = static_cast<unsigned char>(bytes[i - 1]);
    if ((c & 0xC0) == 0x80) { --i; continue; }
    const size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return bytes.size() - (i - 1) >= need ? bytes.size() : i - 1;
  }
  return bytes.size();
}

namespace {

// The length of the valid UTF-8 character at text[i] (0: none starts there).
size_t utf8_char_at(const std::string& text, size_t i) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  const size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
  if (n == 0 || i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
  }
  return n;
}

std::vector<Token> byte_tokens(const std::vector<std::string>& pieces) {
  std::vector<Token> out(256, -1);
  for (Token t = static_cast<Token>(pieces.size()) - 1; t >= 0; --t) {  // the lowest id wins
    if (pieces[t].size() == 1) out[static_cast<unsigned char>(pieces[t][0])] = t;
  }
  return out;
}

}  // namespace

VocabBridge::VocabBridge(const Model& small, const Model& large)
    : small_(small), large_(large), small_pieces_(pieces_of(small)), large_pieces_(pieces_of(large)),
      small_byte_(byte_tokens(small_pieces_)), large_byte_(byte_tokens(large_pieces_)) {
  const llama_vocab* sv = small.vocab();
  const llama_vocab* lv = large.vocab();
  std::unordered_map<std::string, Token> large_ids;
  for (Token t = static_cast<Token>(large_pieces_.size()) - 1; t >= 0; --t) {  // the lowest id wins
    if (!is_control(lv, t) && !large_pieces_[t].empty()) large_ids[large_pieces_[t]] = t;
  }
  to_large_.assign(small_pieces_.size(), -1);
  std::vector<bool> reached(large_pieces_.size(), false);
  for (Token t = 0; t < static_cast<Token>(small_pieces_.size()); ++t) {
    if (llama_vocab_is_eog(sv, t)) {
      to_large_[t] = llama_vocab_eos(lv);
    } else if (!is_control(sv, t)) {
      const auto it = large_ids.find(small_pieces_[t]);
      if (it != large_ids.end()) to_large_[t] = it->second;
    }
    if (to_large_[t] >= 0 && !reached[to_large_[t]]) reached[to_large_[t]] = true, ++shared_;
  }
  const double total = double(small_pieces_.size() + large_pieces_.size()) - shared_;
  overlap_ = total > 0 ? shared_ / total : 0.0;
}

const std::string& VocabBridge::piece_of(const Model& model, Token t) const {
  return &model == &small_ ? small_pieces_[t] : large_pieces_[t];
}

std::string VocabBridge::bytes(const Model& model, const Token* ids, size_t n) const {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += piece_of(model, ids[i]);
  return out;
}

std::vector<Token> VocabBridge::spell(const Model& model, const std::string& text) const {
  const std::vector<Token>& byte = &model == &small_ ? small_byte_ : large_byte_;
  std::vector<Token> out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size()) {
      const size_t n = utf8_char_at(text, j);
      if (n == 0) break;
      j += n;
    }
    if (j > i) {
      const std::vector<Token> ids = fragment(model, text.substr(i, j - i));
      out.insert(out.end(), ids.begin(), ids.end());
    }
    if (j < text.size()) {  // a byte that starts no valid character
      const Token t = byte[static_cast<unsigned char>(text[j])];
      if (t >= 0) out.push_back(t);
      ++j;
    }
    i = j;
  }
  return out;
}

std::pair<const Token*, const Token*> VocabBridge::large_tokens_with_prefix(const std::string& prefix) const {
  std::call_once(sorted_once_, [&] {
    const llama_vocab* lv = large_.vocab();
    for (Token t = 0; t < static_cast<Token>(large_pieces_.size()); ++t) {
      if (!is_control(lv, t) && !large_pieces_[t].empty()) large_by_piece_.push_back(t);
    }
    std::stable_sort(large_by_piece_.begin(), large_by_piece_.end(),
                     [&](Token a, Token b) { return large_pieces_[a] < large_pieces_[b]; });
  });
  // Pieces that start with `prefix` are one run in piece order: those whose first |prefix| bytes
  // compare equal to it.
  const auto head = [&](Token t) { return std::string_view(large_pieces_[t]).substr(0, prefix.size()); };
  const auto range = std::equal_range(
      large_by_piece_.begin(), large_by_piece_.end(), prefix,
      [&](const auto& a, const auto& b) {
        if constexpr (std::is_same_v<std::decay_t<decltype(a)>, Token>) return head(a) < std::string_view(b);
        else return std::string_view(a) < head(b);
      });
  const Token* base = large_by_piece_.data();
  return {base + (range.first - large_by_piece_.begin()), base + (range.second - large_by_piece_.begin())};
}

std::vector<Token> VocabBridge::fragment(const Model& model, const std::string& text) const {
  if (text.empty()) return {};
  auto exact = [&](const std::vector<Token>& ids) { return bytes(model, ids.data(), ids.size()) == text; };
  std::vector<Token> ids = raw_tokenize(model, text);
  if (exact(ids)) return ids;
  // SentencePiece added a space in front: a text that starts with one lets it stand for that one.
  if (text[0] == ' ') {
    std::vector<Token> rest = raw_tokenize(model, text.substr(1));
    if (exact(rest)) return rest;
  }
  // Otherwise behind a newline, whose tokens (and the added space) are dropped again.
  std::vector<Token> anchored = raw_tokenize(model, "\n" + text);
  std::string lead;
  size_t i = 0;
  while (i < anchored.size() && lead.size() < 2 && lead != "\n") lead += piece_of(model, anchored[i++]);
  if (lead == "\n" || lead == " \n") {
    std::vector<Token> rest(anchored.begin() + static_cast<long>(i), anchored.end());
    if (exact(rest)) return rest;
  }
  return ids;  // the closest there is (System 1 reads a space more; only acceptance changes)
}

}  // namespace fsgen
