// fs's guard against being slower than the large model alone. fs pays a System 1 step on every
// token and a System 2 call on each uncertain one; where System 2 is consulted on most tokens
// (prose, unfamiliar code) that costs more than letting System 2 write with speculative
// verification. The guard watches the share over a short window of fs tokens and then hands the
// writing over to speculative decoding for a span, after which fs tries again (a longer span each
// time the share is still high, back to a short one once it is low).
#pragma once
#include <array>

namespace fsgen {

class FsGuard {
 public:
  // True while the writing is handed over.
  bool handing_over() const { return left_ > 0; }
  // After each token fs wrote itself: whether System 2 was consulted on it.
  void observe_fs_token(bool consulted);
  // After a handed-over step: how many tokens it wrote.
  void observe_handover(int tokens) { left_ -= tokens; }

  static constexpr int kWindow = 16;       // fs tokens judged together
  static constexpr int kTrigger = 8;       // consulted ones among them that hand over (half)
  static constexpr int kFirstSpan = 32;    // tokens handed over the first time
  static constexpr int kMaxSpan = 512;

 private:
  std::array<bool, kWindow> window_{};
  int next_ = 0, filled_ = 0, consulted_ = 0;
  int left_ = 0;
  int span_ = kFirstSpan;
};

}  // namespace fsgen
