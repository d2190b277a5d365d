// System 1's drafts: the small model writes ahead, greedy or sampled with the generation's own
// sampler (the verifier's rejection sampling then needs System 1's distribution at each token).
#include <algorithm>
#include <cmath>

#include "drafts/proposer.hpp"
#include "generation.hpp"
#include "session.hpp"

namespace fsgen {
namespace {

class ModelDrafter final : public DraftProposer {
 public:
  ModelDrafter(Session& small, const SpeculativeOptions& options, int n_vocab)
      : small_(small), options_(options), n_vocab_(n_vocab) {}

  DraftSource source() const override { return DraftSource::Model; }

  // System 1 catches up when drafting first pays: nothing to read up front.
  void begin(const std::vector<Token>&) override {}

  int offer(const DraftRound& round, DraftPlanner& planner) override {
    const int lag = static_cast<int>(round.sequence.size() - small_.cached_prefix(round.sequence));
    return system1_offer(round, planner, options_, lag);
  }

  double expected_rate(const DraftPlanner& planner, int length) const override {
    return planner.expected_rate(DraftSource::Model, length);
  }

  const Draft& draft(Emitter& out, DraftPlanner& planner, int length) override {
    Sampler& sampler = out.sampler();
    seq_ = out.sequence();
    draft_.tokens.clear();
    draft_.uncertainty.clear();
    draft_.cost = 0;
    // The adaptive mode also ends a draft where System 1 is unsure: such a token is likely
    // rejected, and drafting it costs a small-model step and a verify row — how unsure is too
    // unsure follows what those cost against a call (over a network, hardly anything is).
    const float p_min = options_.draft_p_min > 0  ? options_.draft_p_min
                        : options_.draft_max == 0 ? static_cast<float>(planner.confidence_cutoff(length))
                                                  : 0.0f;
    for (int i = 0; i < length; ++i) {
      small_.eval(seq_);
      if (small_.last_decoded_tokens() == 1) planner.observe_draft_step(small_.last_decode_seconds());
      draft_.cost += planner.system1_cost(small_.last_decoded_tokens());
      const float* logits = small_.last_logits();
      Uncertainty u{NAN, NAN, NAN, 0};
      const bool measure = out.tracing() || p_min > 0;
      if (measure) u = measure_uncertainty(logits, n_vocab_);
      if (p_min > 0 && u.top1 < p_min) break;
      Token token;
      if (sampler.greedy()) {
        token = measure ? u.argmax : argmax(logits, n_vocab_);
      } else {
        const size_t row = draft_.tokens.size();
        if (q_.size() <= row) q_.resize(row + 1);
        sampler.distribution(logits, n_vocab_, q_[row]);
        token = sampler.draw(q_[row]);
      }
      draft_.tokens.push_back(token);
      draft_.uncertainty.push_back(u);
      seq_.push_back(token);
    }
    greedy_ = sampler.greedy();
    return draft_;
  }

  float probability(size_t row, Token t) const override {
    if (greedy_) return t == draft_.tokens[row] ? 1.0f : 0.0f;
    return q_[row].prob_of(t);
  }

 private:
  Session& small_;
  SpeculativeOptions options_;
  int n_vocab_;
  bool greedy_ = true;
  std::vector<Token> seq_;
  Draft draft_;
  std::vector<Candidates> q_;  // sampling: System 1's distribution at each draft token
};

}  // namespace

int system1_offer(const DraftRound& round, DraftPlanner& planner, const SpeculativeOptions& options, int lag) {
  if (round.fixed > 0) return round.fixed;
  return planner.choose(DraftSource::Model, std::min(options.adaptive_max, round.limit), 0, lag,
                        static_cast<int>(std::min<size_t>(round.room, 1 << 20)));
}

std::unique_ptr<DraftProposer> make_model_drafter(Session& small, const SpeculativeOptions& options, int n_vocab) {
  return std::make_unique<ModelDrafter>(small, options, n_vocab);
}

}  // namespace fsgen
