// Fast and slow: System 1 (the small model) writes; a router reads System 1's uncertainty and
// consults System 2 only when it is unsure. With the "always" router this is contrastive
// decoding or proxy tuning as plain methods; in oracle mode System 2 decides every token and
// each step records whether System 1's own greedy token differed (a mismatch). The budget router
// consults System 2 on a set share of the tokens (budget_router.hpp); the guard hands the writing
// to speculative verification while System 2 is being consulted on most tokens (fs_guard.hpp).
#include <algorithm>
#include <optional>

#include "distribution.hpp"
#include "decoding/budget_router.hpp"
#include "decoding/fs_guard.hpp"
#include "decoding/router.hpp"
#include "decoding/strategies.hpp"

namespace fsgen {
namespace {

class FastSlow final : public Strategy {
 public:
  FastSlow(Session& small, System2& system2, const RouterOptions& router, bool oracle, int n_vocab,
           const FsHandover& handover)
      : small_(small), system2_(system2), router_(router), oracle_(oracle), n_vocab_(n_vocab),
        handover_(handover.strategy), large_(handover.large), planner_(handover.planner) {
    if (router_.router == Router::Budget && !oracle_) budget_.emplace(router_.system2_share, router_.effective_threshold());
  }

  // System 2 reads the prompt up front too (unless it is never consulted): otherwise its first
  // call would pay the whole prompt inside the generation.
  void prefill(const std::vector<Token>& prompt) override {
    small_.eval(prompt);
    if (oracle_ || router_.router != Router::Never) system2_.prefill(prompt);
    if (handover_ != nullptr) handover_->prefill(prompt);  // the caches already hold it: free
  }

  void step(Emitter& out) override {
    // The guard weighs costs priced by the generation's cost table, never measured time, against
    // the faster lossless way to write a token: the large model alone or speculative drafts.
    const bool guarded = handover_ != nullptr;
    const double large_token = guarded ? planner_->verify_cost(1) : 0.0;
    const double reference = guarded ? planner_->lossless_token_cost(agreement_.rate()) : 0.0;
    if (guarded && guard_.handing_over()) {
      const size_t before = out.sequence().size();
      handover_->step(out);
      const std::vector<Token>& seq = out.sequence();
      const int written = static_cast<int>(seq.size() - before);
      out.count_guard_tokens(written);
      const int missed = static_cast<int>(seq.size() - small_.cached_prefix(seq));  // System 1's catch-up
      guard_.observe_handover(written > 0 ? written : 1, handover_->last_step_cost(), large_token,
                              planner_->catch_up_cost(missed));
      return;
    }
    const std::vector<Token>& seq = out.sequence();
    double cost = guarded ? planner_->system1_cost(unread_tokens(small_, seq)) : 0.0;
    small_.eval(seq);
    const float* small_logits = small_.last_logits();
    const Uncertainty u = measure_uncertainty(small_logits, n_vocab_);
    TokenRecord record;
    record.entropy = u.entropy;
    record.top1 = u.top1;
    record.margin = u.margin;
    const bool consult = oracle_ || (budget_ ? budget_->consults(u.entropy) : router_consults(router_, u));
    if (consult) {
      if (guarded) cost += planner_->system2_cost(unread_tokens(*large_, seq));
      const float* scores = system2_.scores(seq, small_logits);
      // A call right after another decodes one token of the large model: a timing for the next
      // generation's cost table (this one's is frozen).
      if (guarded && large_->last_decoded_tokens() == 1) planner_->observe_verify(1, large_->last_decode_seconds());
      out.count_system2_call();
      record.token = out.sampler().choose(scores, n_vocab_);
      record.source = system2_.source();
      record.system2_called = true;
      record.mismatch = record.token != u.argmax;
    } else {
      record.token = out.sampler().choose(small_logits, n_vocab_);
    }
    if (guarded) agreement_.observe(consult, record.token == u.argmax, u.top1);
    out.emit(record);
    if (guarded) {
      guard_.observe_fs_token(consult, cost, reference, system2_debt(*planner_, *large_, out.sequence()),
                              planner_->free_draft_token_cost());
    }
  }

 private:
  Session& small_;
  System2& system2_;
  RouterOptions router_;
  bool oracle_;
  int n_vocab_;
  Strategy* handover_;
  Session* large_;
  DraftPlanner* planner_;
  std::optional<BudgetRouter> budget_;
  FsGuard guard_;
  DraftAgreement agreement_;
};

}  // namespace

std::unique_ptr<Strategy> make_fast_slow_strategy(Session& small, System2& system2, const RouterOptions& router,
                                                  bool oracle, int n_vocab, const FsHandover& handover) {
  return std::make_unique<FastSlow>(small, system2, router, oracle, n_vocab, handover);
}

}  // namespace fsgen
