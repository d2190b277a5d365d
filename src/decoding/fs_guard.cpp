#include "decoding/fs_guard.hpp"

#include <algorithm>
#include <cmath>

namespace fsgen {

void FsGuard::count(int tokens, bool fs, double cost, double large_cost) {
  if (!(cost > 0) || !(large_cost > 0)) return;
  const double keep = std::pow(kDecay, tokens);
  fs_balance_ *= keep;
  elapsed_ *= keep;
  (fs ? fs_balance_ : handover_balance_) += large_cost - cost;
  elapsed_ += cost;
}

void FsGuard::hand_over() {
  left_ = span_;
  span_ = std::min(span_ * 2, kMaxSpan);
  filled_ = consulted_ = next_ = 0;  // fs judges afresh after the span: the window restarts empty
}

void FsGuard::observe_fs_token(bool consulted, double seconds, double reference_token_seconds, double system2_debt,
                               double ceiling_token_seconds) {
  if (filled_ == kWindow) {
    consulted_ -= consulted_in_[next_];
  } else {
    ++filled_;
  }
  consulted_in_[next_] = consulted;
  consulted_ += consulted;
  next_ = (next_ + 1) % kWindow;
  double reference = reference_token_seconds;
  if (reference > 0 && handover_tokens_ > 0) reference = std::min(reference, handover_cost_ / handover_tokens_);
  count(1, true, seconds, reference);
  if (seconds > 0) {
    fs_cost_ = fs_cost_ * kDecay + seconds;
    fs_tokens_ = fs_tokens_ * kDecay + 1;
  }
  ++since_handover_;
  if (reference > 0 && elapsed_ > 0) {
    // Hand over as soon as fs is behind (judged over a few tokens at least).
    const bool judged = filled_ >= kMinTokens || (filled_ >= kEarlyTokens && consulted_ >= kEarlyConsults);
    if (judged && behind(system2_debt)) {
      hand_over();
    } else if (ceiling_token_seconds > 0 && handover_tokens_ == 0 && since_handover_ >= kProbeAfter &&
               (fs_cost_ + system2_debt) / fs_tokens_ > ceiling_token_seconds) {
      // The hand-over might be faster (the table cannot price n-gram drafts ahead): try it.
      left_ = kFirstSpan;
      probing_ = true;
      filled_ = consulted_ = next_ = 0;
    } else if (filled_ == kWindow) {
      span_ = kFirstSpan;
    }
    return;
  }
  if (filled_ < kWindow) return;
  if (consulted_ >= kTrigger) {
    hand_over();
  } else {
    span_ = kFirstSpan;
  }
}

void FsGuard::observe_handover(int tokens, double seconds, double large_token_seconds, double catch_up_seconds) {
  left_ -= tokens;
  since_handover_ = 0;
  double reference = large_token_seconds;
  if (seconds > 0) {
    const double keep = std::pow(kDecay, tokens);
    handover_cost_ = handover_cost_ * keep + seconds;
    handover_tokens_ = handover_tokens_ * keep + tokens;
    if (reference > 0) reference = std::min(reference, handover_cost_ / handover_tokens_);
  }
  count(tokens, false, seconds, tokens * reference);
  if (left_ > 0) return;
  // After a probe fs writes again whatever the probe cost (it was the guard's experiment).
  // Otherwise fs tries again only once its losses are back within budget, System 1's catch-up
  // paid first: on a CPU a batch of a few dozen tokens costs System 1 many steps, more than fs can
  // win back on a prompt that made the guard hand over.
  if (!probing_ && behind(catch_up_seconds)) left_ = kFirstSpan;
  probing_ = false;
}

}  // namespace fsgen
