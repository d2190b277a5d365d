// The budget router: System 2 is consulted on a requested share of the tokens, spent on the
// ones where System 1 is least sure. Its threshold is not fixed but a running quantile of
// System 1's entropy within this generation, steered by how far the calls so far are from the
// target, so the share holds whatever the model's entropies look like (code: mostly near 0;
// prose: mostly above a fixed threshold).
#pragma once
#include <vector>

namespace fsgen {

class BudgetRouter {
 public:
  // share in (0, 1]; warm_threshold (nats) decides the first few tokens, before the history
  // says anything about this generation's entropies.
  BudgetRouter(float share, float warm_threshold);

  // Decides one token from System 1's entropy there, and records the decision.
  bool consults(float entropy);

  int decided() const { return decided_; }
  int consulted() const { return consulted_; }

 private:
  static constexpr int kWarmup = 8;       // tokens decided by warm_threshold (under the budget)
  static constexpr double kHorizon = 16;  // tokens over which a debt or surplus of calls is evened out
  // The band the calls keep around the target: at most this many calls behind or ahead, or this
  // share of the tokens decided so far if more (so the share is within 3 points from 64 tokens on).
  static constexpr double kBandCalls = 1.9;
  static constexpr double kBandShare = 0.02;

  bool decide(float entropy) const;

  double share_;
  float warm_threshold_;
  std::vector<float> sorted_;  // entropies of this generation so far, ascending
  int decided_ = 0;
  int consulted_ = 0;
};

}  // namespace fsgen
