// Speculative decoding: System 1 drafts, System 2 verifies the whole draft in one batched
// decode, both caches roll back past a rejection (Session::eval does it), the bonus token is
// kept. Greedy: accept while the draft equals System 2's argmax. Sampling: exact rejection
// sampling (accept with min(1, p_L/p_S), else draw from max(0, p_L - p_S) normalised), so the
// output follows System 2's distribution.
#include <algorithm>
#include <cmath>

#include "distribution.hpp"
#include "strategies/strategies.hpp"

namespace fsgen {

namespace {

class Speculative final : public Strategy {
 public:
  Speculative(Session& small, Session& large, const SpeculativeOptions& options, DraftPlanner& planner, int n_vocab,
              int max_rows)
      : small_(small), large_(large), options_(options), planner_(planner), n_vocab_(n_vocab), max_rows_(max_rows) {}

  // Only the large model up front: the small one catches up when drafting first pays.
  void prefill(const std::vector<Token>& prompt) override {
    large_.eval(prompt);
    planner_.begin_prompt();
  }

  void step(Emitter& out) override {
    // A draft of k tokens is verified in one batch of k + 1 rows (at most n_batch, and what
    // the logits buffer holds) and needs k + 1 tokens of room (max_tokens and the context).
    const size_t room = out.room();
    const int limit = static_cast<int>(std::min<size_t>(
        {room > 0 ? room - 1 : 0, size_t(kMaxOutputRows - 1), size_t(std::max(1, max_rows_) - 1)}));
    const int target = options_.draft_max > 0 ? std::min(options_.draft_max, limit)
                                              : planner_.choose(DraftOrigin::Model, std::min(options_.adaptive_max, limit));
    draft(out, target);
    verify(out);
  }

 private:
  void draft(Emitter& out, int target) {
    Sampler& sampler = out.sampler();
    seq_ = out.sequence();
    drafts_.clear();
    infos_.clear();
    // The adaptive mode also ends a draft where System 1 is unsure: such a token is likely
    // rejected, and drafting it costs a small-model step and a verify row.
    constexpr float kAdaptiveConfidence = 0.3f;
    const float p_min = options_.draft_p_min > 0 ? options_.draft_p_min
                        : options_.draft_max == 0 ? kAdaptiveConfidence : 0.0f;
    for (int i = 0; i < target; ++i) {
      small_.eval(seq_);
      if (small_.last_decoded_tokens() == 1) planner_.observe_draft_step(small_.last_decode_seconds());
      const float* logits = small_.last_logits();
      Uncertainty u{};
      const bool measure = out.tracing() || p_min > 0;
      if (measure) u = measure_uncertainty(logits, n_vocab_);
      if (p_min > 0 && u.top1 < p_min) break;
      Token token;
      if (sampler.greedy()) {
        token = measure ? u.argmax : argmax(logits, n_vocab_);
      } else {
        if (q_.size() <= drafts_.size()) q_.resize(drafts_.size() + 1);
        sampler.distribution(logits, n_vocab_, q_[drafts_.size()]);
        token = sampler.draw(q_[drafts_.size()]);
      }
      drafts_.push_back(token);
      infos_.push_back(u);
      seq_.push_back(token);
    }
  }

  void verify(Emitter& out) {
    const size_t k = drafts_.size();
    seq_.resize(out.sequence().size());  // the verify batch: sequence + drafts
    seq_.insert(seq_.end(), drafts_.begin(), drafts_.end());
    large_.eval(seq_, k + 1);
    if (large_.last_decoded_tokens() == static_cast<int>(k + 1)) {
      planner_.observe_verify(static_cast<int>(k + 1), large_.last_decode_seconds());
    }
    out.count_system2_call();

    Sampler& sampler = out.sampler();
    // Draft tokens System 2 judged, and those it agreed with. A generation that ends inside the
    // draft (an accepted end-of-generation token, a stop string) leaves the rest unjudged: that
    // is no rejection.
    int judged = 0, agreed = 0;
    for (size_t i = 0; i <= k; ++i) {
      const float* row = large_.logits(i);
      TokenRecord record;
      record.system2_called = true;
      if (i < k && out.tracing()) {
        record.entropy = infos_[i].entropy;
        record.top1 = infos_[i].top1;
        record.margin = infos_[i].margin;
      }
      bool accept = false;
      Token replacement = 0;
      if (sampler.greedy()) {
        replacement = argmax(row, n_vocab_);
        accept = i < k && replacement == drafts_[i];
      } else {
        sampler.distribution(row, n_vocab_, p_);
        if (i < k) {
          const float q = q_[i].prob_of(drafts_[i]);
          const float p = p_.prob_of(drafts_[i]);
          accept = q > 0 && sampler.uniform() < std::min(1.0, double(p) / q);
          if (!accept) replacement = draw_residual(sampler, q_[i]);
        } else {
          replacement = sampler.draw(p_);  // bonus
        }
      }
      if (i < k) ++judged;
      if (accept) {
        ++agreed;  // an accepted end-of-generation token counts, though it is not output
        record.token = drafts_[i];
        record.source = Source::System1;
        if (!out.emit(record)) break;
        continue;
      }
      record.token = replacement;
      record.source = Source::System2;
      record.mismatch = i < k;  // System 1's draft was overruled
      out.emit(record);
      break;
    }
    if (judged > 0) {
      out.record_draft(judged, agreed);
      planner_.observe_round(DraftOrigin::Model, judged, agreed);
    }
  }

  // max(0, p_L - p_S), normalised; p_ holds System 2's distribution for this row. q goes into a
  // dense table by token id first (cleared afterwards): O(vocabulary) whatever the truncation,
  // where a lookup per candidate was quadratic without truncation (top_k=0, top_p=1, min_p=0).
  Token draw_residual(Sampler& sampler, const Candidates& q) {
    if (dense_q_.size() < static_cast<size_t>(n_vocab_)) dense_q_.assign(n_vocab_, 0.0f);
    for (size_t j = 0; j < q.ids.size(); ++j) dense_q_[q.ids[j]] = q.p[j];
    residual_.ids.clear();
    residual_.p.clear();
    double total = 0;
    for (size_t j = 0; j < p_.ids.size(); ++j) {
      const float r = p_.p[j] - dense_q_[p_.ids[j]];
      if (r > 0) {
        residual_.ids.push_back(p_.ids[j]);
        residual_.p.push_back(r);
        total += r;
      }
    }
    for (Token t : q.ids) dense_q_[t] = 0.0f;
    if (total <= 0) return sampler.draw(p_);
    for (auto& r : residual_.p) r = static_cast<float>(r / total);
    return sampler.draw(residual_);
  }

  Session& small_;
  Session& large_;
  SpeculativeOptions options_;
  DraftPlanner& planner_;
  int n_vocab_;
  int max_rows_;  // rows one verify batch can hold (n_batch)
  std::vector<Token> seq_, drafts_;
  std::vector<Uncertainty> infos_;
  std::vector<Candidates> q_;
  std::vector<float> dense_q_;  // q by token id, all zero between uses
  Candidates p_, residual_;
};

}  // namespace

std::unique_ptr<Strategy> make_speculative_strategy(Session& small, Session& large, const SpeculativeOptions& options,
                                                    DraftPlanner& planner, int n_vocab, int max_rows) {
  return std::make_unique<Speculative>(small, large, options, planner, n_vocab, max_rows);
}

}  // namespace fsgen
