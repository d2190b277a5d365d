#include "strategies/fs_guard.hpp"

#include <algorithm>

namespace fsgen {

void FsGuard::observe_fs_token(bool consulted, double seconds, double large_token_seconds) {
  if (filled_ == kWindow) {
    consulted_ -= consulted_in_[next_];
    seconds_ -= seconds_in_[next_];
  } else {
    ++filled_;
  }
  consulted_in_[next_] = consulted;
  seconds_in_[next_] = seconds;
  consulted_ += consulted;
  seconds_ += seconds;
  next_ = (next_ + 1) % kWindow;
  if (filled_ < kWindow) return;
  const bool slower = large_token_seconds > 0 && consulted_ >= kCostedTrigger && seconds_ > kWindow * large_token_seconds;
  if (consulted_ >= kTrigger || slower) {
    left_ = span_;
    span_ = std::min(span_ * 2, kMaxSpan);
    // fs judges afresh after the span: the window restarts empty.
    filled_ = consulted_ = next_ = 0;
    seconds_ = 0;
  } else {
    span_ = kFirstSpan;
  }
}

}  // namespace fsgen
