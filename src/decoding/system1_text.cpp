#include "decoding/system1_text.hpp"

#include <algorithm>

namespace fsgen {

void System1Text::begin() {
  seq_ = prompt_;
  ends_.clear();
  text_.clear();
}

void System1Text::write(Token t) {
  text_ += bridge_.small_piece(t);
  seq_.push_back(t);
  ends_.push_back(text_.size());
}

void System1Text::truncate(size_t at) {
  text_.resize(at);
  while (!ends_.empty() && ends_.back() > at) ends_.pop_back(), seq_.pop_back();
}

const std::vector<Token>& System1Text::read() {
  const size_t covered = ends_.empty() ? 0 : ends_.back();
  const std::string tail = text_.substr(covered);
  const size_t whole = complete_utf8_prefix(tail);
  if (whole == 0) return seq_;
  size_t end = covered;
  for (Token t : bridge_.spell(bridge_.small(), tail.substr(0, whole))) {
    end = std::min(end + bridge_.small_piece(t).size(), covered + whole);
    seq_.push_back(t);
    ends_.push_back(end);
  }
  if (!ends_.empty()) ends_.back() = covered + whole;  // a spelling with a space more still covers it
  return seq_;
}

}  // namespace fsgen
