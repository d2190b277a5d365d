#include "text.hpp"

#include <algorithm>

namespace fsgen {
namespace {

const char kReplacement[] = "\xEF\xBF\xBD";

// Length of the UTF-8 sequence a lead byte starts, 0 if it cannot start one.
int sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

bool valid_sequence(const unsigned char* s, int len) {
  for (int i = 1; i < len; ++i)
    if ((s[i] & 0xC0) != 0x80) return false;
  if (len == 3 && s[0] == 0xE0 && s[1] < 0xA0) return false;  // overlong
  if (len == 3 && s[0] == 0xED && s[1] >= 0xA0) return false;  // surrogates
  if (len == 4 && s[0] == 0xF0 && s[1] < 0x90) return false;  // overlong
  if (len == 4 && s[0] == 0xF4 && s[1] >= 0x90) return false;  // > U+10FFFF
  return true;
}

}  // namespace

std::string sanitize_utf8(const std::string& bytes, std::string* partial) {
  std::string out;
  out.reserve(bytes.size());
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const int len = sequence_length(s[i]);
    if (len == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    if (i + len > n) {
      // Unfinished at the end: keep it for the next token if its bytes so far are plausible.
      bool plausible = true;
      for (size_t j = i + 1; j < n; ++j) plausible = plausible && (s[j] & 0xC0) == 0x80;
      if (partial != nullptr && plausible) {
        *partial = bytes.substr(i);
        return out;
      }
      out += kReplacement;
      ++i;
      continue;
    }
    if (!valid_sequence(s + i, len)) {
      out += kReplacement;
      ++i;
      continue;
    }
    out.append(bytes, i, len);
    i += len;
  }
  if (partial != nullptr) partial->clear();
  return out;
}

int count_code_points(const std::string& utf8) {
  int count = 0;
  for (unsigned char c : utf8) count += (c & 0xC0) != 0x80;
  return count;
}

TextAssembler::TextAssembler(std::vector<std::string> stop) : stop_(std::move(stop)) {
  for (const auto& s : stop_) longest_stop_ = std::max(longest_stop_, s.size());
}

std::string TextAssembler::release(size_t upto) {
  if (upto <= released_) return {};
  std::string out = text_.substr(released_, upto - released_);
  released_ = upto;
  return out;
}

std::string TextAssembler::add(const std::string& piece) {
  if (stopped_) return {};
  const size_t before = text_.size();
  const std::string complete = sanitize_utf8(partial_ + piece, &partial_);
  text_ += complete;
  chars_ += count_code_points(complete);
  if (stop_.empty()) return release(text_.size());

  // A stop string can only end in the new text: search from where it could begin.
  const size_t from = before > longest_stop_ ? before - longest_stop_ : 0;
  size_t cut = std::string::npos;
  for (const auto& s : stop_) cut = std::min(cut, text_.find(s, from));
  if (cut != std::string::npos) {
    stopped_ = true;
    chars_ -= count_code_points(text_.substr(cut));
    text_.resize(cut);
    return release(cut);
  }
  // Hold back the longest tail that is the start of a stop string.
  size_t hold = 0;
  for (const auto& s : stop_) {
    for (size_t len = std::min(s.size() - 1, text_.size()); len > hold; --len) {
      if (text_.compare(text_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  return release(text_.size() - hold);
}

std::string TextAssembler::finish() {
  if (!stopped_ && !partial_.empty()) {
    const std::string tail = sanitize_utf8(partial_, nullptr);
    partial_.clear();
    text_ += tail;
    chars_ += count_code_points(tail);
  }
  return release(text_.size());
}

}  // namespace fsgen
