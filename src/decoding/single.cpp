// One model decoding alone.
#include "distribution.hpp"
#include "decoding/strategies.hpp"

namespace fsgen {
namespace {

class SingleModel final : public Strategy {
 public:
  SingleModel(Session& session, Source source) : session_(session), source_(source) {}

  void prefill(const std::vector<Token>& prompt) override { session_.eval(prompt); }

  void step(Emitter& out) override {
    session_.eval(out.sequence());
    const float* logits = session_.last_logits();
    TokenRecord record;
    record.source = source_;
    record.system2_called = source_ != Source::System1;
    record.token = out.sampler().choose(logits, session_.n_vocab());
    if (source_ == Source::System1 && out.tracing()) {
      const Uncertainty u = measure_uncertainty(logits, session_.n_vocab());
      record.entropy = u.entropy;
      record.top1 = u.top1;
      record.margin = u.margin;
    }
    if (record.system2_called) out.count_system2_call();
    out.emit(record);
  }

 private:
  Session& session_;
  Source source_;
};

}  // namespace

std::unique_ptr<Strategy> make_single_strategy(Session& session, Source source) {
  return std::make_unique<SingleModel>(session, source);
}

}  // namespace fsgen
