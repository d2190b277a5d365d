// A model context: the KV cache, the tokens it holds, and logits on demand.
//
// Every method is written as "give me model X's next-token logits after this sequence":
// eval() makes the cache hold exactly that sequence — keeping the common prefix, rolling back
// the rest with llama_memory_seq_rm, and decoding what is missing in one batch — so catching up,
// rollback after rejected drafts, and prefix reuse across calls all happen in one place.
#pragma once
#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#include "fsgen/options.hpp"
#include "fsgen/types.hpp"
#include "llama_handles.hpp"
#include "prompt_store.hpp"
#include "weights.hpp"

namespace fsgen {

// Thrown inside the core when a decode was aborted by cancel(); the driver turns it into
// finish_reason "cancelled".
struct Cancelled {};

// The most logits rows one decode returns (a verify batch: the longest draft + 1).
constexpr int kMaxOutputRows = 65;

// What stops a generation, checked between steps and by llama.cpp's abort callback during a
// decode: the object's cancel() (Model/Pair: "whatever is running now") or the call's own flag
// (a GenerationJob's, so that cancelling a job that waits for the object's lock cannot stop
// another job, and is not lost when it starts).
struct CancelFlags {
  const std::atomic<bool>* object = nullptr;
  const std::atomic<bool>* call = nullptr;  // set by generate() for the duration of one call
  bool requested() const {
    return (object != nullptr && object->load(std::memory_order_relaxed)) ||
           (call != nullptr && call->load(std::memory_order_relaxed));
  }
};

// How many leading tokens of seq[0:n] `held` begins with.
inline size_t common_prefix(const std::vector<Token>& held, const Token* seq, size_t n) {
  const size_t limit = std::min(n, held.size());
  size_t k = 0;
  while (k < limit && held[k] == seq[k]) ++k;
  return k;
}

// What a decoding method sees of one model context. LocalSession holds a llama_context in this
// process; RemoteSession (rpc/remote_session.hpp) is a proxy for one held by a helper process
// (a model on llama.cpp's RPC backend, isolated because ggml-rpc aborts on network failures).
class Session {
 public:
  virtual ~Session() = default;
  // Make the cache hold seq[0:n] and return the logits after each of the last n_rows prefixes:
  // row i is the distribution of the token at position n - n_rows + i.
  virtual void eval(const Token* seq, size_t n, size_t n_rows = 1) = 0;
  void eval(const std::vector<Token>& seq, size_t n_rows = 1) { eval(seq.data(), seq.size(), n_rows); }
  // Valid until the next eval() or clear() on this session.
  virtual const float* logits(size_t row) const = 0;
  const float* last_logits() const { return logits(rows_ - 1); }

  int n_vocab() const { return n_vocab_; }
  int n_ctx() const { return n_ctx_; }
  // Tokens the cache holds (the sequence of the last eval, rejected drafts included).
  virtual size_t n_cached() const = 0;
  // How many leading tokens of seq[0:n] the cache already holds: what this model has read of
  // that sequence (after a speculative round it also holds the drafts the verifier rejected).
  virtual size_t cached_prefix(const Token* seq, size_t n) const = 0;
  size_t cached_prefix(const std::vector<Token>& seq) const { return cached_prefix(seq.data(), seq.size()); }
  // Seconds spent in the last eval's decode calls (for a remote model: the whole round trip),
  // and how many tokens it decoded.
  double last_decode_seconds() const { return last_seconds_; }
  int last_decoded_tokens() const { return last_decoded_; }
  // Decodes over the session's life: timings for a result's breakdown, never for a decision.
  struct DecodeTotals {
    double seconds = 0;
    int decodes = 0;
    int tokens = 0;
    std::vector<int> by_tokens;  // decodes by the tokens each decoded
  };
  const DecodeTotals& totals() const { return totals_; }

 protected:
  // Adds the last eval's decode to the totals (after last_seconds_ and last_decoded_ are set).
  void count_decode() {
    if (last_decoded_ <= 0) return;
    totals_.seconds += last_seconds_;
    ++totals_.decodes;
    totals_.tokens += last_decoded_;
    if (last_decoded_ >= static_cast<int>(totals_.by_tokens.size())) totals_.by_tokens.resize(last_decoded_ + 1, 0);
    ++totals_.by_tokens[last_decoded_];
  }
  DecodeTotals totals_;
  int n_vocab_ = 0;
  int n_ctx_ = 0;
  size_t rows_ = 0;  // rows the last eval returned
  double last_seconds_ = 0;
  int last_decoded_ = 0;
};

// A llama_context in this process.
class LocalSession final : public Session {
 public:
  LocalSession(std::shared_ptr<const Weights> weights, const ModelOptions& options, const CancelFlags* cancel);

  using Session::eval;
  void eval(const Token* seq, size_t n, size_t n_rows = 1) override;
  const float* logits(size_t row) const override;
  size_t n_cached() const override { return cached_.size(); }
  using Session::cached_prefix;
  size_t cached_prefix(const Token* seq, size_t n) const override { return common_prefix(cached_, seq, n); }
  int n_batch() const { return n_batch_; }
  const Weights& weights() const { return *weights_; }

 private:
  void clear();  // drops the whole cache
  void rollback(size_t keep);
  // Before the cache moves from what it holds to seq[0:n] (keeping `keep` tokens): saves what a
  // longer jump than a rejected draft would lose, and restores a saved prompt that holds more of
  // seq than the cache does. Returns the tokens kept.
  size_t switch_prompt(const Token* seq, size_t n, size_t keep);
  void decode_range(const Token* seq, size_t begin, size_t end, size_t first_output);

  std::shared_ptr<const Weights> weights_;  // declared first: the context is freed before the weights
  ContextHandle ctx_;
  Batch batch_;
  std::vector<Token> cached_;   // tokens whose KV entries are in the cache, in order
  PromptStore store_;
  int n_batch_ = 0;
  // Which logits the last decode left: outputs for positions [out_first_, cached_.size()).
  bool outputs_valid_ = false;
  size_t out_first_ = 0;
  size_t row_base_ = 0;  // batch index of the first requested row in the last decode
  size_t row_offset_ = 0;
};

// A model reading sequences that hold ids beyond its vocabulary: System 1 of a pair whose large
// model has a few more entries (Qwen2.5 0.5B and 7B: 151,936 and 152,064) reads what the large
// model wrote. Such an id is read as substitutes[id - n_vocab] (pair.cpp chooses them); ids it
// has pass unchanged, so the cache stays keyed by the sequence as read.
class SubstitutingSession final : public Session {
 public:
  SubstitutingSession(std::unique_ptr<Session> inner, std::vector<Token> substitutes);

  using Session::eval;
  void eval(const Token* seq, size_t n, size_t n_rows = 1) override;
  const float* logits(size_t row) const override { return inner_->logits(row); }
  size_t n_cached() const override { return inner_->n_cached(); }
  using Session::cached_prefix;
  size_t cached_prefix(const Token* seq, size_t n) const override;

 private:
  bool lacks(Token t) const { return t >= n_vocab_ && size_t(t - n_vocab_) < substitutes_.size(); }
  std::unique_ptr<Session> inner_;
  std::vector<Token> substitutes_;
  std::vector<Token> read_;  // the sequence with the substitutes in place
};

// For tests: every local decode also sleeps a random time up to max_seconds (0: off), inside its
// timed part, as a busy machine slows it. Decisions that change the text must not notice.
void set_decode_jitter(double max_seconds);

// A context on these weights: in this process, or in the helper process of a remote model.
std::unique_ptr<Session> make_session(std::shared_ptr<const Weights> weights, const ModelOptions& options,
                                      const CancelFlags* cancel);

}  // namespace fsgen
