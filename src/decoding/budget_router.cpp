#include "decoding/budget_router.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fsgen {

BudgetRouter::BudgetRouter(float share, float warm_threshold)
    : share_(std::clamp(double(share), 0.0, 1.0)), warm_threshold_(warm_threshold) {}

bool BudgetRouter::consults(float entropy) {
  // A non-finite entropy (degenerate logits) counts as the most uncertain: it sorts, NaN does not.
  if (!std::isfinite(entropy)) entropy = std::numeric_limits<float>::infinity();
  const bool consult = decide(entropy);
  sorted_.insert(std::upper_bound(sorted_.begin(), sorted_.end(), entropy), entropy);
  ++decided_;
  consulted_ += consult;
  return consult;
}

bool BudgetRouter::decide(float entropy) const {
  if (share_ >= 1) return true;
  const double target_after = share_ * (decided_ + 1);  // calls the share allows once this token is decided
  const bool behind = consulted_ < target_after;
  // The calls stay within a band around the target, so the share holds over any stretch of
  // tokens even where the quantile lags a drift or every entropy is the same; inside the band the
  // router is free to wait for the most uncertain tokens.
  const double band = std::max(kBandCalls, kBandShare * decided_);
  if (consulted_ + band <= target_after) return true;
  if (consulted_ + 1 > target_after + band) return false;
  if (static_cast<int>(sorted_.size()) < kWarmup) return behind && entropy > warm_threshold_;

  // The share wanted from here: the requested one, plus the debt (or minus the surplus) of calls
  // spread over the next kHorizon tokens.
  const double debt = share_ * decided_ - consulted_;
  const double wanted = std::clamp(share_ + debt / kHorizon, 0.0, 1.0);
  // Where this entropy ranks among the generation's (itself included): consult when the values
  // at least as high make up no more than the wanted share (it is among the most uncertain);
  // on a tie across that boundary, only while behind the target.
  const double n = static_cast<double>(sorted_.size()) + 1;
  const auto first_above = std::upper_bound(sorted_.begin(), sorted_.end(), entropy);
  const auto first_equal = std::lower_bound(sorted_.begin(), first_above, entropy);
  const double above = static_cast<double>(sorted_.end() - first_above);
  const double at_or_above = above + static_cast<double>(first_above - first_equal) + 1;
  if (at_or_above / n <= wanted) return true;
  if (above / n < wanted) return behind;
  return false;
}

}  // namespace fsgen
