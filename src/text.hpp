// Token bytes to text, incrementally: complete UTF-8 only (a character may span tokens; invalid
// bytes become U+FFFD), and stop strings that may span tokens (text that could still become one
// is held back from streaming until it cannot).
#pragma once
#include <string>
#include <vector>

namespace fsgen {

class TextAssembler {
 public:
  explicit TextAssembler(std::vector<std::string> stop);

  // Adds one token's bytes; returns the text this releases for streaming.
  std::string add(const std::string& piece);
  // At the end: releases what was held back (an unfinished character becomes U+FFFD).
  std::string finish();

  bool stopped() const { return stopped_; }
  const std::string& text() const { return text_; }
  int char_count() const { return chars_; }  // code points in text()

 private:
  std::string release(size_t upto);

  std::vector<std::string> stop_;
  size_t longest_stop_ = 0;
  std::string text_;     // valid UTF-8 so far (cut before a stop string once one appears)
  std::string partial_;  // bytes of an unfinished character
  size_t released_ = 0;  // bytes of text_ already streamed
  int chars_ = 0;
  bool stopped_ = false;
};

// Valid UTF-8 with invalid sequences replaced by U+FFFD; `partial` receives an unfinished tail
// (pass nullptr to replace it too).
std::string sanitize_utf8(const std::string& bytes, std::string* partial);
int count_code_points(const std::string& utf8);

}  // namespace fsgen
