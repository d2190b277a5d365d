// fs's guard against being slower than the faster lossless way to write the same text: the large
// model alone, or speculative decoding with System 1's drafts. fs pays a System 1 step on every
// token and a System 2 call on each uncertain one; where System 2 is consulted on many tokens
// (prose, unfamiliar code), or where System 1's step costs nearly a large one, that costs more
// than letting System 2 write with speculative verification. The guard judges a window of fs
// tokens and then hands the writing over to speculative decoding for a span, after which fs tries
// again (a longer span each time it hands over again, back to a short one once fs pays).
//
// Costs come from the generation's cost table (cost_table.hpp), never from a clock: what fs did
// (System 1 steps, System 2 reads by batch size) priced by the table, so that the same table
// gives the same hand-overs whatever the machine's load. The reference is a token's cost the
// faster lossless way (DraftPlanner::lossless_token_cost: large-only, or speculative at the
// acceptance this generation's own tokens show). Where it is known, the guard keeps a balance:
// the reference's cost for the tokens written, minus what they cost, less what System 2's next
// read of the tokens System 1 wrote unconsulted will cost (a debt fs runs up whose bill comes
// later: on a CPU where a batch costs nearly a step per row, System 1's cheap tokens cost more
// than large-only's once System 2 has read them). It hands over as soon as fs is behind by more
// than 2% of the time spent (judged after 8 fs tokens, or after 4 where System 2 was consulted on
// 3 of them: prose), and after a span it lets fs try again only once the balance, less what
// System 1's catch-up on the handed-over tokens will cost, is back within that 2% (so fs's losses
// stay near 2% of the generation, and a prompt where fs pays keeps fs). fs's own part of the
// balance and the cost it is measured against forget: each token weighs them down by kDecay, so a
// bad stretch long past cannot keep fs out (what hand-overs saved, and the catch-up fs would owe,
// do not fade). The table cannot price n-gram drafts ahead (they depend on the text), so while fs
// costs more than a handed-over token could at best and no hand-over has been seen, the guard
// hands over once for a short span after 48 fs tokens: its pace in this generation, priced by the
// table, then joins the reference. Where the reference is unknown: a full window with System 2
// consulted on half its tokens hands over.
#pragma once
#include <array>

namespace fsgen {

// How often System 2 would accept a draft token of System 1's, by a generation's own fs tokens (from
// a weak prior): a consulted token says whether System 2 agreed with System 1's choice; an
// unconsulted one was likely agreed with as System 1 was sure of it (its top-1 probability).
// Speculative's cost per token, the guard's reference, depends on it.
class DraftAgreement {
 public:
  void observe(bool consulted, bool agreed, float top1) {
    agreed_ += consulted ? (agreed ? 1.0 : 0.0) : (top1 == top1 ? top1 : 0.0);  // NaN: unknown
    ++judged_;
  }
  double rate() const { return (agreed_ + kPriorAgreed) / (judged_ + kPriorTokens); }

 private:
  static constexpr double kPriorTokens = 4, kPriorAgreed = 0.7 * kPriorTokens;
  double agreed_ = 0;
  int judged_ = 0;
};

class FsGuard {
 public:
  // True while the writing is handed over.
  bool handing_over() const { return left_ > 0; }
  // After each token fs wrote itself: whether System 2 was consulted on it, and the step's cost
  // (seconds, from the cost table). reference_token_seconds: what a token costs the faster
  // lossless way the table knows of (large-only, or speculative with System 1's drafts; <= 0:
  // unknown), which the hand-over's own pace in this generation, once seen, may beat (n-gram
  // drafts); system2_debt: what System 2's next read of the tokens System 1 wrote unconsulted
  // will cost beyond one token (it is paid later, by whoever writes next, but fs ran it up);
  // ceiling_token_seconds: the least a token could cost handed over (free drafts, all accepted;
  // <= 0: no probing). While fs costs more than that and the hand-over's pace is unknown, the
  // guard hands over for a short span now and then to learn it.
  void observe_fs_token(bool consulted, double seconds = 0, double reference_token_seconds = 0,
                        double system2_debt = 0, double ceiling_token_seconds = 0);
  // After a handed-over step: how many tokens it wrote, at what cost; large_token_seconds: the
  // large model's cost of a token (the hand-over's tokens are weighed against the faster of it and
  // the hand-over's own pace: they save nothing against themselves); catch_up_seconds:
  // what System 1 would pay to catch up on everything written since fs last ran.
  void observe_handover(int tokens, double seconds = 0, double large_token_seconds = 0,
                        double catch_up_seconds = 0);

  static constexpr int kWindow = 16;          // fs tokens judged together
  static constexpr int kTrigger = 8;          // consulted ones that hand over where costs are unknown
  static constexpr int kMinTokens = 8;        // fs tokens measured before the balance is judged
  static constexpr int kEarlyTokens = 4;      // ...or this many, where System 2 was consulted on
  static constexpr int kEarlyConsults = 3;    // this many of them (prose: fs cannot pay there)
  static constexpr double kLoss = 0.02;       // of the time spent: how far behind large-only fs may fall
  static constexpr int kFirstSpan = 32;       // tokens handed over the first time
  static constexpr int kMaxSpan = 512;
  static constexpr double kDecay = 0.99;      // per token, of fs's part of the balance and the cost
  static constexpr int kProbeAfter = 48;      // fs tokens before the hand-over is probed

 private:
  std::array<bool, kWindow> consulted_in_{};
  int next_ = 0, filled_ = 0, consulted_ = 0;
  // Behind large-only by more than the loss budget, with `debt` seconds still to pay.
  bool behind(double debt = 0) const {
    return elapsed_ > 0 && fs_balance_ + handover_balance_ - debt < -kLoss * elapsed_;
  }
  void count(int tokens, bool fs, double cost, double large_cost);
  void hand_over();
  // Where the large model's cost is known: large-only's cost for the tokens written minus what
  // they cost, for fs's tokens (recent ones weighing most) and the handed-over ones; and what the
  // tokens cost (recent ones weighing most).
  double fs_balance_ = 0, handover_balance_ = 0, elapsed_ = 0;
  int left_ = 0;
  int span_ = kFirstSpan;
  // The pace (modelled cost per token, recent tokens weighing most) of fs's own tokens, its debt
  // included, and of the hand-over's in this generation (none seen: 0 tokens).
  double fs_cost_ = 0, fs_tokens_ = 0, handover_cost_ = 0, handover_tokens_ = 0;
  int since_handover_ = 0;  // fs tokens since the last hand-over
  bool probing_ = false;    // the span handed over is a probe
};

}  // namespace fsgen
