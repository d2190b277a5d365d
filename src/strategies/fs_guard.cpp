#include "strategies/fs_guard.hpp"

#include <algorithm>

namespace fsgen {

void FsGuard::observe_fs_token(bool consulted) {
  if (filled_ == kWindow) consulted_ -= window_[next_];
  else ++filled_;
  window_[next_] = consulted;
  consulted_ += consulted;
  next_ = (next_ + 1) % kWindow;
  if (filled_ < kWindow) return;
  if (consulted_ >= kTrigger) {
    left_ = span_;
    span_ = std::min(span_ * 2, kMaxSpan);
    // fs judges afresh after the span: the window restarts empty.
    filled_ = consulted_ = next_ = 0;
  } else {
    span_ = kFirstSpan;
  }
}

}  // namespace fsgen
