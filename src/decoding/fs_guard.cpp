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

void FsGuard::observe_fs_token(bool consulted, double seconds, double large_token_seconds, double system2_debt) {
  if (filled_ == kWindow) {
    consulted_ -= consulted_in_[next_];
  } else {
    ++filled_;
  }
  consulted_in_[next_] = consulted;
  consulted_ += consulted;
  next_ = (next_ + 1) % kWindow;
  count(1, true, seconds, large_token_seconds);
  if (large_token_seconds > 0 && elapsed_ > 0) {
    // Measured: hand over as soon as fs is behind (judged over a few tokens at least).
    const bool judged = filled_ >= kMinTokens || (filled_ >= kEarlyTokens && consulted_ >= kEarlyConsults);
    if (judged && behind(system2_debt)) hand_over();
    else if (filled_ == kWindow) span_ = kFirstSpan;
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
  count(tokens, false, seconds, tokens * large_token_seconds);
  // fs tries again only once its losses are back within budget (large-only's pace meanwhile),
  // System 1's catch-up paid first: on a CPU a batch of a few dozen tokens costs System 1 many
  // steps, more than fs can win back on a prompt that made the guard hand over.
  if (left_ <= 0 && behind(catch_up_seconds)) left_ = kFirstSpan;
}

}  // namespace fsgen
