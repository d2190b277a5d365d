// Fast and slow (and oracle) on a translated pair: the models' tokenizers differ, so they meet in
// text. The output is written in the large model's tokens (what the driver emits and counts);
// System 1 reads the same text in its own.
//
// System 1 writes into a pending text, and its tokens reach the output only once the large
// model's tokenization of that text cannot change any more: the tokens before the last word start
// of the pending text (in text without spaces, those kLongTail tokens from its end), since later
// bytes of a word can change how the large model splits it. A step may therefore emit nothing.
// System 1 reads its own tokens for what it wrote (with router "never" it writes as "small"
// does), and what others wrote (System 2, the guard's hand-over) tokenized in its vocabulary as
// it arrives, once its characters are whole.
//
// System 2 (the large model) consulted: the pending text is tokenized by the large model, and
// System 2 must not read its last token as final (System 1 may have stopped mid-word: "wor").
// It backs off to the last boundary both agree on, the end of the pending text's last large
// token but one, and writes the next token among those whose piece starts with the bytes it
// backed off (token healing); where no token starts so, it does not back off.
//
// Mismatch (oracle, and fs where it consults) is measured in text: System 1's greedy token at the
// position against the bytes System 2 newly wrote (its piece less the backed-off bytes), compared
// up to the shorter of the two; an end of generation matches only an end of generation.
//
// UTF-8: a piece may end inside a character. System 1 is not interrupted before its pending text
// ends on a whole character, and after System 2 wrote part of one, System 2 writes on (System 1
// reads whole characters only).
//
// The guard (fs) hands the writing over as in fast_slow.cpp, to speculative decoding across the
// tokenizers, once the pending text is written out; System 1 then reads what it wrote.
#include <llama.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "decoding/budget_router.hpp"
#include "decoding/fs_guard.hpp"
#include "decoding/router.hpp"
#include "decoding/system1_text.hpp"
#include "decoding/strategies.hpp"
#include "distribution.hpp"
#include "fsgen/error.hpp"

namespace fsgen {
namespace {

class CrossFastSlow final : public Strategy {
 public:
  CrossFastSlow(Session& small, Session& large, const VocabBridge& bridge, std::vector<Token> small_prompt,
                const RouterOptions& router, bool oracle, const FsHandover& handover)
      : small_(small), large_(large), bridge_(bridge), system1_(bridge, std::move(small_prompt)), router_(router),
        oracle_(oracle), handover_(handover.strategy), planner_(handover.planner),
        small_vocab_(bridge.small().info().n_vocab), large_vocab_(bridge.large().info().n_vocab) {
    if (router_.router == Router::Budget && !oracle_) budget_.emplace(router_.system2_share, router_.effective_threshold());
  }

  void prefill(const std::vector<Token>& prompt) override {
    system1_.begin();
    pending_.clear();
    pending_u_.clear();
    synced_ = counted_ = prompt.size();
    output_bytes_ = 0;
    held_ = 0;
    if (fits(system1_.read())) small_.eval(system1_.read());
    if (oracle_ || router_.router != Router::Never) large_.eval(prompt);
    if (handover_ != nullptr) handover_->prefill(prompt);
  }

  void step(Emitter& out) override {
    catch_up(out);
    // System 1's text is the output's and the pending text, byte for byte (cheap: lengths).
    const std::vector<Token>& seq = out.sequence();
    for (; counted_ < seq.size(); ++counted_) output_bytes_ += bridge_.large_piece(seq[counted_]).size();
    if (system1_.size() != output_bytes_ + pending_.size()) {
      throw GenerationError("internal error: System 1's text and the output differ");
    }
    const size_t before = out.sequence().size();
    const bool guarded = handover_ != nullptr;
    const double large_token = guarded ? planner_->verify_cost(1) : 0.0;
    const double reference = guarded ? planner_->lossless_token_cost(agreement_.rate()) : 0.0;
    // The hand-over writes after the whole text: System 1 finishes its character first.
    if (guarded && guard_.handing_over() && complete_utf8_prefix(pending_) == pending_.size()) {
      if (!commit(out, true)) return;
      const size_t start = out.sequence().size();
      handover_->step(out);
      const int written = static_cast<int>(out.sequence().size() - start);
      out.count_guard_tokens(written);
      catch_up(out);
      const std::vector<Token>& read = system1_.read();
      const int missed = static_cast<int>(read.size() - small_.cached_prefix(read));  // System 1's catch-up
      guard_.observe_handover(written > 0 ? written : 1, handover_->last_step_cost(), large_token,
                              planner_->catch_up_cost(missed));
      return;
    }
    const std::vector<Token>& read = system1_.read();
    const bool reads = system1_.whole() && fits(read);
    Uncertainty u{NAN, NAN, NAN, -1};
    const float* small_logits = nullptr;
    double cost = 0;
    if (reads) {
      if (guarded) cost = planner_->system1_cost(unread_tokens(small_, read));
      small_.eval(read);
      small_logits = small_.last_logits();
      u = measure_uncertainty(small_logits, small_vocab_);
    }
    bool consult = true;  // System 1 cannot read: System 2 writes
    if (reads && !oracle_) {
      if (held_ >= kMaxHeld) consult = true;  // progress: the pending text cannot grow forever
      else if (complete_utf8_prefix(pending_) != pending_.size()) consult = false;
      else consult = budget_ ? budget_->consults(u.entropy) : router_consults(router_, u);
    }
    bool going = true;
    if (consult) {
      going = consult_system2(out, u, guarded ? &cost : nullptr);
    } else {
      if (guarded) agreement_.observe(false, true, u.top1);
      const Token token = out.sampler().choose(small_logits, small_vocab_);
      if (bridge_.small().is_eog(token)) {
        if (commit(out, true)) going = emit(out, llama_vocab_eos(bridge_.large().vocab()), u);
      } else {
        system1_.write(token);
        const std::string& piece = bridge_.small_piece(token);
        pending_ += piece;
        pending_u_.insert(pending_u_.end(), piece.size(), u);
        going = commit(out, false);
      }
    }
    held_ = out.sequence().size() > before ? 0 : held_ + 1;
    if (guarded && going) {
      guard_.observe_fs_token(consult, cost, reference, system2_debt(*planner_, large_, out.sequence()),
                              planner_->free_draft_token_cost());
    }
  }

 private:
  static constexpr size_t kLongTail = 16;  // as CrossReader: text without spaces commits this far back
  static constexpr int kMaxHeld = 64;      // steps without output before System 2 is consulted

  bool fits(const std::vector<Token>& read) const { return read.size() + 1 < static_cast<size_t>(small_.n_ctx()); }

  // Text others wrote since this strategy last emitted (the hand-over's).
  void catch_up(const Emitter& out) {
    const std::vector<Token>& seq = out.sequence();
    for (; synced_ < seq.size(); ++synced_) system1_.append(bridge_.large_piece(seq[synced_]));
  }

  // One of System 1's tokens (in the large model's ids).
  bool emit(Emitter& out, Token token, const Uncertainty& u) {
    TokenRecord record;
    record.token = token;
    record.source = Source::System1;
    record.entropy = u.entropy;
    record.top1 = u.top1;
    record.margin = u.margin;
    const bool going = out.emit(record);
    synced_ = out.sequence().size();  // its bytes are System 1's text already
    return going;
  }

  // The pending text in the large model's tokens, and whether they spell it exactly.
  bool tokenize_pending(std::vector<Token>& ids) const {
    const std::string text = pending_.substr(0, complete_utf8_prefix(pending_));
    ids = bridge_.spell(bridge_.large(), text);
    return bridge_.bytes(bridge_.large(), ids.data(), ids.size()) == text;
  }

  // Emits the first `keep` of the pending text's large tokens `ids` as System 1's (each with the
  // uncertainty of the step that wrote its first byte). false: the generation ended.
  bool emit_pending(Emitter& out, const std::vector<Token>& ids, size_t keep, bool exact) {
    size_t offset = 0;
    for (size_t i = 0; i < keep; ++i) {
      const Uncertainty u = offset < pending_u_.size() ? pending_u_[offset] : Uncertainty{NAN, NAN, NAN, -1};
      offset += bridge_.large_piece(ids[i]).size();
      if (!emit(out, ids[i], u)) return false;
    }
    if (!exact) {
      // The large tokens spell other bytes (or the text held an unfinished character): System 1
      // reads what was written from here on.
      system1_.truncate(system1_.size() - pending_.size());
      const std::string written = bridge_.bytes(bridge_.large(), ids.data(), keep);
      system1_.append(written);
      pending_.clear();
      pending_u_.clear();
      return true;
    }
    pending_.erase(0, offset);
    pending_u_.erase(pending_u_.begin(), pending_u_.begin() + static_cast<long>(std::min(offset, pending_u_.size())));
    return true;
  }

  // Emits what of the pending text is settled (all: everything). false: the generation ended.
  bool commit(Emitter& out, bool all) {
    if (pending_.empty()) return true;
    std::vector<Token> ids;
    const bool exact = tokenize_pending(ids);
    size_t keep = ids.size();
    if (!all && exact) {
      keep = 0;
      for (size_t j = 1; j < ids.size(); ++j) {
        const std::string& piece = bridge_.large_piece(ids[j]);
        if ((!piece.empty() && piece[0] == ' ') || j + kLongTail <= ids.size()) keep = j;
      }
      if (ids.size() >= out.room()) keep = ids.size();  // the generation ends within these tokens
    }
    return emit_pending(out, ids, keep, exact);
  }

  // System 2 writes the next token, after the settled part of the pending text (token healing,
  // above). cost: the guard's account (nullptr: unguarded).
  bool consult_system2(Emitter& out, const Uncertainty& u, double* cost) {
    std::vector<Token> ids;
    const bool exact = tokenize_pending(ids) && complete_utf8_prefix(pending_) == pending_.size();
    std::string backed;  // the bytes System 2 rewrites
    std::pair<const Token*, const Token*> allowed{nullptr, nullptr};
    if (exact && !ids.empty()) {
      allowed = bridge_.large_tokens_with_prefix(bridge_.large_piece(ids.back()));
      if (allowed.first != allowed.second) {
        backed = bridge_.large_piece(ids.back());
        ids.pop_back();
      }
    }
    if (!emit_pending(out, ids, ids.size(), exact)) return false;
    if (!backed.empty()) {  // what is left pending is the backed-off token: System 2 rewrites it
      system1_.truncate(system1_.size() - pending_.size());
      pending_.clear();
      pending_u_.clear();
    }
    const std::vector<Token>& seq = out.sequence();
    if (cost != nullptr) *cost += planner_->system2_cost(unread_tokens(large_, seq));
    large_.eval(seq);
    if (cost != nullptr && large_.last_decoded_tokens() == 1) planner_->observe_verify(1, large_.last_decode_seconds());
    out.count_system2_call();
    const float* scores = large_.last_logits();
    if (!backed.empty()) {
      masked_.assign(static_cast<size_t>(large_vocab_), -INFINITY);
      for (const Token* t = allowed.first; t != allowed.second; ++t) masked_[*t] = scores[*t];
      scores = masked_.data();
    }
    TokenRecord record;
    record.token = out.sampler().choose(scores, large_vocab_);
    record.source = Source::System2;
    record.system2_called = true;
    record.entropy = u.entropy;
    record.top1 = u.top1;
    record.margin = u.margin;
    const bool ends = bridge_.large().is_eog(record.token);
    const std::string piece = ends ? std::string() : bridge_.large_piece(record.token);
    const std::string written = piece.substr(backed.size());  // new bytes: the piece starts with the backed-off ones
    if (u.argmax >= 0) {
      const bool system1_ends = bridge_.small().is_eog(u.argmax);
      const std::string& own = bridge_.small_piece(u.argmax);
      const size_t n = std::min(own.size(), written.size());
      record.mismatch = ends || system1_ends ? ends != system1_ends : own.compare(0, n, written, 0, n) != 0;
      if (cost != nullptr) agreement_.observe(true, !record.mismatch, u.top1);
    }
    system1_.append(piece);  // System 1's text was cut back to where the piece starts
    const bool going = out.emit(record);
    synced_ = out.sequence().size();
    return going;
  }

  Session& small_;
  Session& large_;
  const VocabBridge& bridge_;
  System1Text system1_;
  RouterOptions router_;
  bool oracle_;
  Strategy* handover_;
  DraftPlanner* planner_;
  int small_vocab_, large_vocab_;
  std::optional<BudgetRouter> budget_;
  FsGuard guard_;
  DraftAgreement agreement_;
  std::string pending_;                // System 1's text not emitted yet
  std::vector<Uncertainty> pending_u_;  // per pending byte: System 1's uncertainty at the step that wrote it
  size_t synced_ = 0;                  // output tokens whose bytes System 1's text holds
  int held_ = 0;                       // steps in a row that emitted nothing
  size_t counted_ = 0, output_bytes_ = 0;  // output tokens counted, and their bytes
  std::vector<float> masked_;
};

}  // namespace

std::unique_ptr<Strategy> make_cross_fast_slow_strategy(Session& small, Session& large, const VocabBridge& bridge,
                                                        std::vector<Token> small_prompt, const RouterOptions& router,
                                                        bool oracle, const FsHandover& handover) {
  return std::make_unique<CrossFastSlow>(small, large, bridge, std::move(small_prompt), router, oracle, handover);
}

}  // namespace fsgen
