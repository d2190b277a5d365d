// cross_vocab="auto": SLEM or TLI each round, by which the verifier has been accepting more of.
// Both run the same System 1 steps and verify rows per draft token, so the one with the higher
// acceptance has the higher expected tokens per second. SLEM starts ahead (it keeps System 1's
// whole distribution's choice, TLI only its shared part); the other is retried now and then, so
// that an estimate left behind can recover.
#include <memory>

#include "drafts/proposer.hpp"

namespace fsgen {
namespace {

class CrossVocabAuto final : public DraftProposer {
 public:
  CrossVocabAuto(std::unique_ptr<DraftProposer> slem, std::unique_ptr<DraftProposer> tli) {
    algorithms_[0] = std::move(slem);
    algorithms_[1] = std::move(tli);
  }

  DraftSource source() const override { return DraftSource::Model; }

  void begin(const std::vector<Token>& prompt) override {
    for (auto& a : algorithms_) a->begin(prompt);
  }

  int offer(const DraftRound& round, DraftPlanner& planner) override {
    ++rounds_;
    chosen_ = acceptance_[0] >= acceptance_[1] ? 0 : 1;
    if (rounds_ % kRetryEvery == 0) chosen_ = 1 - chosen_;
    return algorithms_[chosen_]->offer(round, planner);
  }

  double expected_rate(const DraftPlanner& planner, int length) const override {
    return algorithms_[chosen_]->expected_rate(planner, length);
  }

  const Draft& draft(Emitter& out, DraftPlanner& planner, int length) override {
    return algorithms_[chosen_]->draft(out, planner, length);
  }

  float probability(size_t row, Token t) const override { return algorithms_[chosen_]->probability(row, t); }

  void observe(int judged, int accepted) override {
    double& a = acceptance_[chosen_];
    a += kWeight * (double(accepted) / judged - a);
  }

 private:
  static constexpr int kRetryEvery = 8;
  static constexpr double kWeight = 0.25;  // of the latest round in the moving average
  std::unique_ptr<DraftProposer> algorithms_[2];  // SLEM, TLI
  double acceptance_[2] = {0.8, 0.7};
  int chosen_ = 0;
  long rounds_ = 0;
};

}  // namespace

std::unique_ptr<DraftProposer> make_cross_vocab_auto(std::unique_ptr<DraftProposer> slem,
                                                     std::unique_ptr<DraftProposer> tli) {
  return std::make_unique<CrossVocabAuto>(std::move(slem), std::move(tli));
}

}  // namespace fsgen
