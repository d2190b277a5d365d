// Speculative decoding: a draft (System 1's, or an n-gram lookup in the prompt and the output so
// far) is verified by the verifier (System 2, or the one model) in one batched decode; both
// caches roll back past a rejection (Session::eval does it), the bonus token is kept. Greedy:
// accept while the draft equals the verifier's argmax. Sampling: exact rejection sampling
// (accept with min(1, p/q), else draw from max(0, p - q) normalised; an n-gram draft is a
// deterministic proposal, q = 1 on its token), so the output follows the verifier's distribution.
// The verifier chooses among all of its ids; System 1 drafts among those both models have, so
// q = 0 on the verifier's extra ids (still exact: they are drawn from the residual), and where
// one is written System 1 reads a substitute for it when it catches up (SubstitutingSession).
#include <algorithm>
#include <cmath>

#include "distribution.hpp"
#include "drafts/proposer.hpp"
#include "decoding/strategies.hpp"

namespace fsgen {
namespace {

class Speculative final : public Strategy {
 public:
  explicit Speculative(const SpeculativeSetup& setup)
      : setup_(setup), options_(setup.options), planner_(*setup.planner), dense_q_(setup.n_vocab, 0.0f) {
    if (setup_.source != DraftSource::Model) ngram_ = make_ngram_proposer();
  }

  // Only the verifier up front: System 1 catches up when drafting first pays.
  void prefill(const std::vector<Token>& prompt) override {
    setup_.verifier->eval(prompt);
    if (ngram_) ngram_->begin(prompt);
    planner_.begin_prompt();
  }

  void step(Emitter& out) override {
    // A draft of k tokens needs k + 1 rows in one verify batch, and k + 1 tokens of room.
    const size_t room = out.room();
    const int limit = std::max(0, static_cast<int>(std::min<size_t>(
                                      {room > 0 ? room - 1 : 0, size_t(kMaxOutputRows - 1),
                                       size_t(std::max(1, setup_.max_rows) - 1)})));
    const bool fixed = options_.draft_max > 0;
    const int fixed_length = std::min(options_.draft_max, limit);
    origin_ = DraftOrigin::None;
    int length = 0;

    int ngram_length = 0;
    if (ngram_ && limit > 0) {
      ngram_->draft(out.sequence(), fixed ? fixed_length : limit, ngram_draft_);
      // An n-gram draft is the continuation of an earlier occurrence, cut where that text ends.
      const int available = static_cast<int>(ngram_draft_.tokens.size());
      if (available > 0) {
        ngram_length = fixed ? available : planner_.choose(DraftOrigin::Ngram, available, ngram_draft_.match);
      }
    }
    int model_length = 0;
    if (setup_.drafter != nullptr && setup_.source != DraftSource::Ngram && limit > 0) {
      const int lag = static_cast<int>(out.sequence().size() - std::min(out.sequence().size(), drafter_seen_));
      model_length =
          fixed ? fixed_length
                : planner_.choose(DraftOrigin::Model, std::min(options_.adaptive_max, limit), 0, lag,
                                  static_cast<int>(std::min<size_t>(out.room(), 1 << 20)));
    }
    if (ngram_length > 0 && model_length > 0) {
      // Auto: the source with the better expected tokens per second this round.
      const double ngram_rate = planner_.expected_rate(DraftOrigin::Ngram, ngram_length, ngram_draft_.match);
      const double model_rate = planner_.expected_rate(DraftOrigin::Model, model_length);
      if (ngram_rate >= model_rate) model_length = 0; else ngram_length = 0;
    }
    if (ngram_length > 0) {
      origin_ = DraftOrigin::Ngram;
      length = ngram_length;
      drafts_.assign(ngram_draft_.tokens.begin(), ngram_draft_.tokens.begin() + length);
      infos_.assign(length, Uncertainty{NAN, NAN, NAN, 0});
    } else if (model_length > 0) {
      origin_ = DraftOrigin::Model;
      drafter_seen_ = out.sequence().size();
      draft_with_model(out, model_length);
    } else {
      drafts_.clear();
    }
    verify(out);
  }

 private:
  void draft_with_model(Emitter& out, int target) {
    Session& small = *setup_.drafter;
    Sampler& sampler = out.sampler();
    seq_ = out.sequence();
    drafts_.clear();
    infos_.clear();
    // The adaptive mode also ends a draft where System 1 is unsure: such a token is likely
    // rejected, and drafting it costs a small-model step and a verify row — how unsure is too
    // unsure follows what those cost against a call (over a network, hardly anything is).
    const float p_min = options_.draft_p_min > 0  ? options_.draft_p_min
                        : options_.draft_max == 0 ? static_cast<float>(planner_.confidence_cutoff(target))
                                                  : 0.0f;
    for (int i = 0; i < target; ++i) {
      small.eval(seq_);
      if (small.last_decoded_tokens() == 1) planner_.observe_draft_step(small.last_decode_seconds());
      const float* logits = small.last_logits();
      Uncertainty u{NAN, NAN, NAN, 0};
      const bool measure = out.tracing() || p_min > 0;
      if (measure) u = measure_uncertainty(logits, setup_.draft_vocab);
      if (p_min > 0 && u.top1 < p_min) break;
      Token token;
      if (sampler.greedy()) {
        token = measure ? u.argmax : argmax(logits, setup_.draft_vocab);
      } else {
        if (q_.size() <= drafts_.size()) q_.resize(drafts_.size() + 1);
        sampler.distribution(logits, setup_.draft_vocab, q_[drafts_.size()]);
        token = sampler.draw(q_[drafts_.size()]);
      }
      drafts_.push_back(token);
      infos_.push_back(u);
      seq_.push_back(token);
    }
    if (drafts_.empty()) origin_ = DraftOrigin::None;
  }

  // The draft's probability of its own token at row i (n-gram drafts are deterministic).
  float draft_probability(size_t i) const {
    return origin_ == DraftOrigin::Model ? q_[i].prob_of(drafts_[i]) : 1.0f;
  }

  void verify(Emitter& out) {
    Session& verifier = *setup_.verifier;
    const size_t k = drafts_.size();
    seq_ = out.sequence();  // the verify batch: sequence + drafts
    seq_.insert(seq_.end(), drafts_.begin(), drafts_.end());
    verifier.eval(seq_, k + 1);
    if (verifier.last_decoded_tokens() == static_cast<int>(k + 1)) {
      planner_.observe_verify(static_cast<int>(k + 1), verifier.last_decode_seconds());
    }
    const bool system2 = setup_.verifier_source != Source::System1;
    if (system2) out.count_system2_call();

    Sampler& sampler = out.sampler();
    int judged = 0, agreed = 0;  // draft tokens System 2 judged, and agreed with
    for (size_t i = 0; i <= k; ++i) {
      const float* row = verifier.logits(i);
      TokenRecord record;
      record.system2_called = system2;
      if (i < k && out.tracing()) {
        record.entropy = infos_[i].entropy;
        record.top1 = infos_[i].top1;
        record.margin = infos_[i].margin;
      }
      if (!system2 && out.tracing()) {  // one model: its own uncertainty, as when decoding alone
        const Uncertainty u = measure_uncertainty(row, setup_.n_vocab);
        record.entropy = u.entropy;
        record.top1 = u.top1;
        record.margin = u.margin;
      }
      bool accept = false;
      Token replacement = 0;
      if (sampler.greedy()) {
        replacement = argmax(row, setup_.n_vocab);
        accept = i < k && replacement == drafts_[i];
      } else {
        sampler.distribution(row, setup_.n_vocab, p_);
        if (i < k) {
          const float q = draft_probability(i);
          const float p = p_.prob_of(drafts_[i]);
          accept = q > 0 && sampler.uniform() < std::min(1.0, double(p) / q);
          if (!accept) replacement = draw_residual(sampler, i);
        } else {
          replacement = sampler.draw(p_);  // bonus
        }
      }
      if (i < k) ++judged;
      if (accept) {
        ++agreed;
        record.token = drafts_[i];
        record.source = origin_ == DraftOrigin::Model ? Source::System1 : setup_.verifier_source;
        record.draft_origin = origin_;
        if (!out.emit(record)) break;  // the end of generation (an accepted EOG token counts)
        continue;
      }
      record.token = replacement;
      record.source = setup_.verifier_source;
      record.mismatch = i < k && origin_ == DraftOrigin::Model;  // System 1's draft was overruled
      out.emit(record);
      break;
    }
    if (judged > 0) {
      out.record_draft(judged, agreed, origin_);
      planner_.observe_round(origin_, judged, agreed, origin_ == DraftOrigin::Ngram ? ngram_draft_.match : 0);
    }
  }

  // max(0, p - q), normalised, for the draft at row i; p_ holds the verifier's distribution for
  // this row. q goes into a dense table by token id first (cleared afterwards), so this costs
  // O(vocabulary) whatever the truncation.
  Token draw_residual(Sampler& sampler, size_t i) {
    if (origin_ == DraftOrigin::Model) {
      for (size_t j = 0; j < q_[i].ids.size(); ++j) dense_q_[q_[i].ids[j]] = q_[i].p[j];
    } else {
      dense_q_[drafts_[i]] = 1.0f;
    }
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
    if (origin_ == DraftOrigin::Model) {
      for (Token t : q_[i].ids) dense_q_[t] = 0.0f;
    } else {
      dense_q_[drafts_[i]] = 0.0f;
    }
    if (total <= 0) return sampler.draw(p_);
    for (auto& r : residual_.p) r = static_cast<float>(r / total);
    return sampler.draw(residual_);
  }

  SpeculativeSetup setup_;
  SpeculativeOptions options_;
  DraftPlanner& planner_;
  std::unique_ptr<DraftProposer> ngram_;
  Draft ngram_draft_;
  DraftOrigin origin_ = DraftOrigin::None;
  size_t drafter_seen_ = 0;  // System 1 holds the sequence up to here (it is left behind between drafts)
  std::vector<Token> seq_, drafts_;
  std::vector<Uncertainty> infos_;
  std::vector<Candidates> q_;
  std::vector<float> dense_q_;
  Candidates p_, residual_;
};

}  // namespace

std::unique_ptr<Strategy> make_speculative_strategy(const SpeculativeSetup& setup) {
  return std::make_unique<Speculative>(setup);
}

DraftSource speculative_draft_source(const SpeculativeOptions& options) {
  return options.draft == DraftSource::None ? DraftSource::Model : options.draft;
}

std::unique_ptr<Strategy> make_one_model_strategy(Session& session, Source source, const SpeculativeOptions& options,
                                                  DraftPlanner& planner, int max_rows) {
  if (!single_model_drafts(options)) return make_single_strategy(session, source);
  SpeculativeSetup setup;
  setup.verifier = &session;
  setup.verifier_source = source;
  setup.source = DraftSource::Ngram;
  setup.options = options;
  setup.planner = &planner;
  setup.n_vocab = session.n_vocab();
  setup.draft_vocab = setup.n_vocab;
  setup.max_rows = max_rows;
  return make_speculative_strategy(setup);
}

}  // namespace fsgen
