// TLI (token-level intersection) drafts for a translated pair: System 1's distribution restricted
// to the tokens both vocabularies hold (the same bytes), renormalised, drawn from and mapped to
// the large model's ids. Its probabilities are a true proposal over the large model's ids (zero
// elsewhere), so standard rejection sampling keeps the output the large model's.
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "drafts/bridged_drafter.hpp"
#include "generation.hpp"
#include "session.hpp"

namespace fsgen {
namespace {

class TliDrafter final : public BridgedDrafter {
 public:
  using BridgedDrafter::BridgedDrafter;

  const Draft& draft(Emitter& out, DraftPlanner& planner, int length) override {
    Sampler& sampler = out.sampler();
    greedy_ = sampler.greedy();
    drafted_at_ = out.sequence().size();
    seq_ = reader_.read(out.sequence());
    draft_.tokens.clear();
    draft_.uncertainty.clear();
    const int n = bridge_.small().info().n_vocab;
    // System 1's tokens may outrun the large model's: it drafts only while its context has room.
    if (seq_.size() + static_cast<size_t>(length) + 2 > static_cast<size_t>(small_.n_ctx())) length = -1;
    masked_.resize(static_cast<size_t>(n));
    for (int i = 0; i < length; ++i) {
      small_.eval(seq_);
      if (small_.last_decoded_tokens() == 1) planner.observe_draft_step(small_.last_decode_seconds());
      const float* logits = small_.last_logits();
      Uncertainty u{NAN, NAN, NAN, 0};  // System 1's own, over its whole vocabulary (the trace's)
      if (out.tracing() || options_.draft_p_min > 0) u = measure_uncertainty(logits, n);
      if (options_.draft_p_min > 0 && u.top1 < options_.draft_p_min) break;
      // Tokens the large model lacks cannot be proposed: -inf renormalises over the rest.
      for (int t = 0; t < n; ++t) masked_[t] = bridge_.to_large(t) >= 0 ? logits[t] : -INFINITY;
      Token token;
      if (greedy_) {
        token = argmax(masked_.data(), n);
      } else {
        if (q_.size() <= draft_.tokens.size()) q_.resize(draft_.tokens.size() + 1);
        Candidates& c = candidates_;
        sampler.distribution(masked_.data(), n, c);
        auto& q = q_[draft_.tokens.size()];
        q.clear();  // several of System 1's ids may spell one large id: their mass adds up
        for (size_t j = 0; j < c.ids.size(); ++j) q[bridge_.to_large(c.ids[j])] += c.p[j];
        token = sampler.draw(c);
      }
      const Token large = bridge_.to_large(token);
      if (large < 0) break;  // nothing shared has any probability
      draft_.tokens.push_back(large);
      draft_.uncertainty.push_back(u);
      if (bridge_.small().is_eog(token)) break;
      seq_.push_back(token);
    }
    return draft_;
  }

  float probability(size_t row, Token t) const override {
    if (greedy_) return t == draft_.tokens[row] ? 1.0f : 0.0f;
    const auto it = q_[row].find(t);
    return it != q_[row].end() ? it->second : 0.0f;
  }

 private:
  bool greedy_ = true;
  std::vector<Token> seq_;
  std::vector<float> masked_;
  Draft draft_;
  Candidates candidates_;
  std::vector<std::unordered_map<Token, float>> q_;  // sampling: the proposal per draft row, in large ids
};

}  // namespace

std::unique_ptr<DraftProposer> make_tli_drafter(Session& small, const VocabBridge& bridge,
                                                std::vector<Token> small_prompt, const SpeculativeOptions& options) {
  return std::make_unique<TliDrafter>(small, bridge, std::move(small_prompt), options);
}

}  // namespace fsgen
