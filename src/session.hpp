// One llama_context on a model: the KV cache, the tokens it holds, and logits on demand.
//
// Every method is written as "give me model X's next-token logits after this sequence":
// eval() makes the cache hold exactly that sequence — keeping the common prefix, rolling back
// the rest with llama_memory_seq_rm, and decoding what is missing in one batch — so catching up,
// rollback after rejected drafts, and prefix reuse across calls all happen in one place.
#pragma once
#include <atomic>
#include <memory>
#include <vector>

#include "fsgen/options.hpp"
#include "fsgen/types.hpp"
#include "llama_handles.hpp"
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

class Session {
 public:
  Session(std::shared_ptr<const Weights> weights, const ModelOptions& options, const CancelFlags* cancel);

  // Make the cache hold seq[0:n] and return the logits after each of the last n_rows prefixes:
  // row i is the distribution of the token at position n - n_rows + i.
  void eval(const Token* seq, size_t n, size_t n_rows = 1);
  void eval(const std::vector<Token>& seq, size_t n_rows = 1) { eval(seq.data(), seq.size(), n_rows); }
  const float* logits(size_t row) const;
  const float* last_logits() const { return logits(rows_ - 1); }

  int n_vocab() const { return n_vocab_; }
  int n_ctx() const { return n_ctx_; }
  // Seconds spent in the last eval's decode calls, and how many tokens it decoded.
  double last_decode_seconds() const { return last_seconds_; }
  int last_decoded_tokens() const { return last_decoded_; }

 private:
  void clear();  // drops the whole cache
  void rollback(size_t keep);
  void decode_range(const Token* seq, size_t begin, size_t end, size_t first_output);

  std::shared_ptr<const Weights> weights_;  // declared first: the context is freed before the weights
  ContextHandle ctx_;
  Batch batch_;
  std::vector<Token> cached_;   // tokens whose KV entries are in the cache, in order
  int n_vocab_ = 0;
  int n_ctx_ = 0;
  int n_batch_ = 0;
  // Which logits the last decode left: outputs for positions [out_first_, cached_.size()).
  bool outputs_valid_ = false;
  size_t out_first_ = 0;
  size_t row_base_ = 0;  // batch index of the first requested row in the last decode
  size_t rows_ = 0;
  size_t row_offset_ = 0;
  double last_seconds_ = 0;
  int last_decoded_ = 0;
};

}  // namespace fsgen
