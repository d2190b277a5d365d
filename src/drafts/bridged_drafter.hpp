// What SLEM and TLI share: System 1 drafting for a translated pair, reading the output through
// the vocabulary bridge (CrossReader) and offering drafts priced as System 1's own.
#pragma once
#include <algorithm>
#include <utility>
#include <vector>

#include "drafts/cross_reader.hpp"
#include "drafts/proposer.hpp"

namespace fsgen {

class BridgedDrafter : public DraftProposer {
 public:
  BridgedDrafter(Session& small, const VocabBridge& bridge, std::vector<Token> small_prompt,
                 const SpeculativeOptions& options)
      : small_(small), bridge_(bridge), reader_(bridge, std::move(small_prompt)), options_(options) {}

  DraftSource source() const override { return DraftSource::Model; }

  void begin(const std::vector<Token>& prompt) override {
    reader_.begin(prompt.size());
    drafted_at_ = 0;
  }

  int offer(const DraftRound& round, DraftPlanner& planner) override {
    limit_ = round.limit;
    planner.set_extra_draft_steps(extra_steps());
    const size_t n = round.sequence.size();
    return system1_offer(round, planner, options_, static_cast<int>(n - std::min(n, drafted_at_)));
  }

  double expected_rate(const DraftPlanner& planner, int length) const override {
    return planner.expected_rate(DraftSource::Model, length);
  }

 protected:
  // System 1 decodes a round takes beyond one per proposed token (DraftPlanner::set_extra_draft_steps).
  virtual int extra_steps() const { return 0; }
  Session& small_;
  const VocabBridge& bridge_;
  CrossReader reader_;
  SpeculativeOptions options_;
  int limit_ = 0;          // the round's longest draft
  size_t drafted_at_ = 0;  // the sequence length when System 1 last drafted
};

}  // namespace fsgen
