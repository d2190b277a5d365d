// N-gram drafts ("prompt lookup"): find the longest suffix of the current text that occurred
// before, in the prompt or the output so far, and propose what followed it there. Code edits,
// refactors and quotes repeat long spans of their input, and such a draft costs no model call.
#include <algorithm>
#include <unordered_map>

#include "drafts/proposer.hpp"

namespace fsgen {
namespace {

// Longest suffix compared, and the most recent occurrences of the last token examined per
// round: bounds the lookup for very frequent tokens (spaces, newlines) on long texts.
constexpr int kMaxMatch = 64;
constexpr size_t kMaxCandidates = 256;

class NgramProposer final : public DraftProposer {
 public:
  void begin(const std::vector<Token>& prompt) override {
    positions_.clear();
    indexed_ = 0;
    index(prompt);
  }

  void draft(const std::vector<Token>& seq, int max_length, Draft& out) override {
    out.tokens.clear();
    out.match = 0;
    if (seq.size() < 2 || max_length <= 0) return;
    if (seq.size() < indexed_ + 1) begin(seq);  // not a continuation of what was indexed
    index(seq);
    const size_t n = seq.size();
    const auto found = positions_.find(seq[n - 1]);
    if (found == positions_.end()) return;
    // Earlier positions j with seq[j] == the last token; the longest match wins, the most recent
    // among equals (the output so far is the likeliest to continue alike).
    const std::vector<size_t>& js = found->second;
    size_t best_j = 0;
    int best_match = 0;
    const size_t first = js.size() > kMaxCandidates ? js.size() - kMaxCandidates : 0;
    for (size_t c = js.size(); c-- > first;) {
      const size_t j = js[c];
      int m = 1;
      while (m < kMaxMatch && m <= static_cast<int>(j) && seq[j - m] == seq[n - 1 - m]) ++m;
      if (m > best_match) {
        best_match = m;
        best_j = j;
        if (m == kMaxMatch) break;
      }
    }
    if (best_match == 0) return;
    out.match = best_match;
    for (size_t p = best_j + 1; p < n && static_cast<int>(out.tokens.size()) < max_length; ++p) {
      out.tokens.push_back(seq[p]);
    }
  }

 private:
  // Indexes positions that have a successor: [indexed_, seq.size() - 1).
  void index(const std::vector<Token>& seq) {
    for (; indexed_ + 1 < seq.size(); ++indexed_) positions_[seq[indexed_]].push_back(indexed_);
  }

  std::unordered_map<Token, std::vector<size_t>> positions_;
  size_t indexed_ = 0;
};

}  // namespace

std::unique_ptr<DraftProposer> make_ngram_proposer() { return std::make_unique<NgramProposer>(); }

}  // namespace fsgen
