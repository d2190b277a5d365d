// Fast and slow: System 1 (the small model) writes; a router reads System 1's uncertainty and
// consults System 2 only when it is unsure. With the "always" router this is contrastive
// decoding or proxy tuning as plain methods; in oracle mode System 2 decides every token and
// each step records whether System 1's own greedy token differed (a mismatch).
#include "distribution.hpp"
#include "strategies/strategies.hpp"

namespace fsgen {
namespace {

class FastSlow final : public Strategy {
 public:
  FastSlow(Session& small, System2& system2, const RouterOptions& router, bool oracle, int n_vocab)
      : small_(small), system2_(system2), router_(router), oracle_(oracle), n_vocab_(n_vocab) {}

  // System 2 reads the prompt up front too (unless it is never consulted): otherwise its first
  // call would pay the whole prompt inside the generation.
  void prefill(const std::vector<Token>& prompt) override {
    small_.eval(prompt);
    if (oracle_ || router_.router != Router::Never) system2_.prefill(prompt);
  }

  void step(Emitter& out) override {
    const std::vector<Token>& seq = out.sequence();
    small_.eval(seq);
    const float* small_logits = small_.last_logits();
    const Uncertainty u = measure_uncertainty(small_logits, n_vocab_);
    TokenRecord record;
    record.entropy = u.entropy;
    record.top1 = u.top1;
    record.margin = u.margin;
    if (oracle_ || router_consults(router_, u)) {
      const float* scores = system2_.scores(seq, small_logits);
      out.count_system2_call();
      record.token = out.sampler().choose(scores, n_vocab_);
      record.source = system2_.source();
      record.system2_called = true;
      record.mismatch = record.token != u.argmax;
    } else {
      record.token = out.sampler().choose(small_logits, n_vocab_);
    }
    out.emit(record);
  }

 private:
  Session& small_;
  System2& system2_;
  RouterOptions router_;
  bool oracle_;
  int n_vocab_;
};

}  // namespace

std::unique_ptr<Strategy> make_fast_slow_strategy(Session& small, System2& system2, const RouterOptions& router,
                                                  bool oracle, int n_vocab) {
  return std::make_unique<FastSlow>(small, system2, router, oracle, n_vocab);
}

}  // namespace fsgen
