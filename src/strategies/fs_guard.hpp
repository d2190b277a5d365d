// fs's guard against being slower than the large model alone. fs pays a System 1 step on every
// token and a System 2 call on each uncertain one; where System 2 is consulted on many tokens
// (prose, unfamiliar code) that costs more than letting System 2 write with speculative
// verification. The guard judges a window of fs tokens and then hands the writing over to
// speculative decoding for a span, after which fs tries again (a longer span each time it hands
// over again, back to a short one once fs pays).
//
// It hands over when System 2 was consulted on half the window or more, or, where the large
// model's cost of one token on this machine is known, when System 2 was consulted on a quarter or
// more and fs's measured time per token over the window exceeds it.
#pragma once
#include <array>

namespace fsgen {

class FsGuard {
 public:
  // True while the writing is handed over.
  bool handing_over() const { return left_ > 0; }
  // After each token fs wrote itself: whether System 2 was consulted on it, and the step's seconds.
  // large_token_seconds: the large model's measured cost of one token (<= 0: unknown).
  void observe_fs_token(bool consulted, double seconds = 0, double large_token_seconds = 0);
  // After a handed-over step: how many tokens it wrote.
  void observe_handover(int tokens) { left_ -= tokens; }

  static constexpr int kWindow = 16;          // fs tokens judged together
  static constexpr int kTrigger = 8;          // consulted ones that hand over whatever the costs
  static constexpr int kCostedTrigger = 4;    // consulted ones that hand over if fs is the slower
  static constexpr int kFirstSpan = 32;       // tokens handed over the first time
  static constexpr int kMaxSpan = 512;

 private:
  std::array<bool, kWindow> consulted_in_{};
  std::array<double, kWindow> seconds_in_{};
  int next_ = 0, filled_ = 0, consulted_ = 0;
  double seconds_ = 0;
  int left_ = 0;
  int span_ = kFirstSpan;
};

}  // namespace fsgen
