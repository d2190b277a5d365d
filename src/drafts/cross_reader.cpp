#include "drafts/cross_reader.hpp"

namespace fsgen {

void CrossReader::begin(size_t large_prompt) {
  large_prompt_ = large_prompt;
  seen_ = 0;
  text_.clear();
  stable_ = small_prompt_;
  committed_ = 0;
}

const std::vector<Token>& CrossReader::read(const std::vector<Token>& large_sequence) {
  for (size_t i = large_prompt_ + seen_; i < large_sequence.size(); ++i, ++seen_) {
    text_ += bridge_.large_piece(large_sequence[i]);
  }
  // An unfinished character waits for its last bytes (it cannot be tokenized yet).
  const std::string tail = text_.substr(committed_, complete_utf8_prefix(text_.substr(committed_)));
  const std::vector<Token> ids = bridge_.fragment(bridge_.small(), tail);
  size_t keep = 0, kept_bytes = 0, bytes = 0;
  for (size_t j = 0; j < ids.size(); ++j) {
    const std::string& piece = bridge_.small_piece(ids[j]);
    // A word start; or, in text without spaces (Chinese, code), any token well behind the end, so
    // that the tail stays short.
    const bool word = !piece.empty() && piece[0] == ' ';
    if (j > 0 && (word || j + kLongTail <= ids.size())) keep = j, kept_bytes = bytes;
    bytes += piece.size();
  }
  // A tokenization that does not spell the tail exactly (rare: SentencePiece's added space) is
  // committed whole, so that no text is tokenized again and again.
  if (bytes != tail.size()) keep = ids.size(), kept_bytes = tail.size();
  stable_.insert(stable_.end(), ids.begin(), ids.begin() + static_cast<long>(keep));
  committed_ += kept_bytes;
  read_ = stable_;
  read_.insert(read_.end(), ids.begin() + static_cast<long>(keep), ids.end());
  return read_;
}

}  // namespace fsgen
