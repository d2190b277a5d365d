// N-gram drafts ("prompt lookup"): find the longest suffix of the current text that occurred
// before, in the prompt or the output so far, and propose what followed it there. Code edits,
// refactors and quotes repeat long spans of their input, and such a draft costs no model call.
#include <algorithm>
#include <cmath>
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
  DraftSource source() const override { return DraftSource::Ngram; }

  void begin(const std::vector<Token>& prompt) override {
    positions_.clear();
    indexed_ = 0;
    index(prompt);
  }

  // An n-gram draft is the continuation of an earlier occurrence, cut where that text ends.
  int offer(const DraftRound& round, DraftPlanner& planner) override {
    lookup(round.sequence, round.fixed > 0 ? round.fixed : round.limit);
    const int available = static_cast<int>(found_.tokens.size());
    if (available == 0) return 0;
    return round.fixed > 0 ? available : planner.choose(DraftSource::Ngram, available, match_);
  }

  double expected_rate(const DraftPlanner& planner, int length) const override {
    return planner.expected_rate(DraftSource::Ngram, length, match_);
  }

  const Draft& draft(Emitter&, DraftPlanner&, int length) override {
    found_.tokens.resize(std::min<size_t>(found_.tokens.size(), static_cast<size_t>(length)));
    found_.uncertainty.assign(found_.tokens.size(), Uncertainty{NAN, NAN, NAN, 0});
    return found_;
  }

  float probability(size_t row, Token t) const override { return t == found_.tokens[row] ? 1.0f : 0.0f; }
  int match() const override { return match_; }

 private:
  void lookup(const std::vector<Token>& seq, int max_length) {
    found_.tokens.clear();
    match_ = 0;
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
    match_ = best_match;
    for (size_t p = best_j + 1; p < n && static_cast<int>(found_.tokens.size()) < max_length; ++p) {
      found_.tokens.push_back(seq[p]);
    }
  }

  // Indexes positions that have a successor: [indexed_, seq.size() - 1).
  void index(const std::vector<Token>& seq) {
    for (; indexed_ + 1 < seq.size(); ++indexed_) positions_[seq[indexed_]].push_back(indexed_);
  }

  std::unordered_map<Token, std::vector<size_t>> positions_;
  size_t indexed_ = 0;
  Draft found_;
  int match_ = 0;  // how many tokens of context the proposal rests on (0: no proposal)
};

}  // namespace

std::unique_ptr<DraftProposer> make_ngram_proposer() { return std::make_unique<NgramProposer>(); }

}  // namespace fsgen
