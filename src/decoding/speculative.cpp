// Speculative decoding: a draft (from a draft source, drafts/proposer.hpp: System 1's, or an
// n-gram lookup in the prompt and the output so far) is verified by the verifier (System 2, or the
// one model) in one batched decode; both caches roll back past a rejection (Session::eval does
// it), the bonus token is kept. Greedy: accept while the draft equals the verifier's argmax.
// Sampling: exact rejection sampling (accept with min(1, p/q), else draw from max(0, p - q)
// normalised; an n-gram draft is a deterministic proposal, q = 1 on its token), so the output
// follows the verifier's distribution.
// The verifier chooses among all of its ids; System 1 drafts among those both models have, so
// q = 0 on the verifier's extra ids (still exact: they are drawn from the residual), and where
// one is written System 1 reads a substitute for it when it catches up (SubstitutingSession).
// A pair whose tokenizers differ drafts through a bridge (drafts/slem.cpp, drafts/tli.cpp): the
// draft arrives in the verifier's ids with its proposal probabilities, and is verified the same way.
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
      : setup_(setup), options_(setup.options), planner_(*setup.planner) {
    if (setup_.source != DraftSource::Model) sources_.push_back(make_ngram_proposer());
    if (setup_.drafter != nullptr && setup_.source != DraftSource::Ngram) {
      if (setup_.bridge == nullptr) {
        sources_.push_back(make_model_drafter(*setup_.drafter, options_, setup_.draft_vocab));
      } else {
        auto slem = [&] { return make_slem_drafter(*setup_.drafter, *setup_.bridge, setup_.small_prompt, options_); };
        auto tli = [&] { return make_tli_drafter(*setup_.drafter, *setup_.bridge, setup_.small_prompt, options_); };
        switch (options_.cross_vocab) {
          case CrossVocab::Slem: sources_.push_back(slem()); break;
          case CrossVocab::Tli: sources_.push_back(tli()); break;
          case CrossVocab::Auto: sources_.push_back(make_cross_vocab_auto(slem(), tli())); break;
        }
      }
    }
  }

  // Only the verifier up front: System 1 catches up when drafting first pays.
  void prefill(const std::vector<Token>& prompt) override {
    setup_.verifier->eval(prompt);
    for (auto& source : sources_) source->begin(prompt);
    planner_.begin_prompt();
  }

  void step(Emitter& out) override {
    // A draft of k tokens needs k + 1 rows in one verify batch, and k + 1 tokens of room.
    const size_t room = out.room();
    const int limit = std::max(0, static_cast<int>(std::min<size_t>(
                                      {room > 0 ? room - 1 : 0, size_t(kMaxOutputRows - 1),
                                       size_t(std::max(1, setup_.max_rows) - 1)})));
    const int fixed = options_.draft_max > 0 ? std::min(options_.draft_max, limit) : 0;
    // Every source offers (the planner's probes count per source), then the offer with the
    // better expected tokens per second drafts; the first listed wins a tie.
    drafter_ = nullptr;
    int length = 0;
    double best_rate = 0;
    if (limit > 0) {
      const DraftRound round{out.sequence(), limit, fixed, room};
      offers_.clear();
      for (auto& source : sources_) offers_.emplace_back(source.get(), source->offer(round, planner_));
      for (const auto& [source, offered] : offers_) {
        if (offered <= 0) continue;
        const double rate = offers_.size() > 1 ? source->expected_rate(planner_, offered) : 0.0;
        if (drafter_ == nullptr || rate > best_rate) {
          drafter_ = source;
          length = offered;
          best_rate = rate;
        }
      }
    }
    draft_ = drafter_ != nullptr ? &drafter_->draft(out, planner_, length) : nullptr;
    step_cost_ = draft_ != nullptr ? draft_->cost : 0.0;
    if (draft_ != nullptr && draft_->tokens.empty()) drafter_ = nullptr, draft_ = nullptr;
    verify(out);
  }

  double last_step_cost() const override { return step_cost_; }

 private:
  DraftSource origin() const { return drafter_ != nullptr ? drafter_->source() : DraftSource::None; }

  void verify(Emitter& out) {
    Session& verifier = *setup_.verifier;
    static const std::vector<Token> kNoDraft;
    const std::vector<Token>& drafts = draft_ != nullptr ? draft_->tokens : kNoDraft;
    const size_t k = drafts.size();
    seq_ = out.sequence();  // the verify batch: sequence + drafts
    seq_.insert(seq_.end(), drafts.begin(), drafts.end());
    verifier.eval(seq_, k + 1);
    step_cost_ += planner_.system2_cost(verifier.last_decoded_tokens());
    if (verifier.last_decoded_tokens() == static_cast<int>(k + 1)) {
      planner_.observe_verify(static_cast<int>(k + 1), verifier.last_decode_seconds());
    }
    const bool system2 = setup_.verifier_source != Source::System1;
    if (system2) out.count_system2_call();

    Sampler& sampler = out.sampler();
    const DraftSource origin = this->origin();
    int judged = 0, agreed = 0;  // draft tokens System 2 judged, and agreed with
    for (size_t i = 0; i <= k; ++i) {
      const float* row = verifier.logits(i);
      TokenRecord record;
      record.system2_called = system2;
      if (i < k && out.tracing()) {
        const Uncertainty& u = draft_->uncertainty[i];
        record.entropy = u.entropy;
        record.top1 = u.top1;
        record.margin = u.margin;
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
        accept = i < k && replacement == drafts[i];
      } else {
        sampler.distribution(row, setup_.n_vocab, p_);
        if (i < k) {
          const float q = drafter_->probability(i, drafts[i]);
          const float p = p_.prob_of(drafts[i]);
          accept = q > 0 && sampler.uniform() < std::min(1.0, double(p) / q);
          if (!accept) replacement = draw_residual(sampler, i);
        } else {
          replacement = sampler.draw(p_);  // bonus
        }
      }
      if (i < k) ++judged;
      if (accept) {
        ++agreed;
        record.token = drafts[i];
        record.source = origin == DraftSource::Model ? Source::System1 : setup_.verifier_source;
        record.draft_origin = origin;
        if (!out.emit(record)) break;  // the end of generation (an accepted EOG token counts)
        continue;
      }
      record.token = replacement;
      record.source = setup_.verifier_source;
      record.mismatch = i < k && origin == DraftSource::Model;  // System 1's draft was overruled
      out.emit(record);
      break;
    }
    if (judged > 0) {
      out.record_draft(judged, agreed, origin);
      planner_.observe_round(origin, judged, agreed, drafter_->match());
      drafter_->observe(judged, agreed);
    }
  }

  // max(0, p - q), normalised, for the draft at row i; p_ holds the verifier's distribution for
  // this row, and the residual keeps its order (or its keys) for the draw.
  Token draw_residual(Sampler& sampler, size_t i) {
    residual_.ids.clear();
    residual_.p.clear();
    residual_.key.clear();
    const bool keyed = !p_.key.empty();
    double total = 0;
    for (size_t j = 0; j < p_.ids.size(); ++j) {
      const float r = p_.p[j] - drafter_->probability(i, p_.ids[j]);
      if (r > 0) {
        residual_.ids.push_back(p_.ids[j]);
        residual_.p.push_back(r);
        if (keyed) residual_.key.push_back(p_.key[j]);
        total += r;
      }
    }
    if (total <= 0) return sampler.draw(p_);
    for (auto& r : residual_.p) r = static_cast<float>(r / total);
    return sampler.draw(residual_);
  }

  SpeculativeSetup setup_;
  SpeculativeOptions options_;
  DraftPlanner& planner_;
  std::vector<std::unique_ptr<DraftProposer>> sources_;  // n-gram first: it wins a tie
  std::vector<std::pair<DraftProposer*, int>> offers_;    // this round's (kept: no allocation per round)
  DraftProposer* drafter_ = nullptr;                      // this round's source (nullptr: no draft)
  const Draft* draft_ = nullptr;
  std::vector<Token> seq_;
  Candidates p_, residual_;
  double step_cost_ = 0;
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
