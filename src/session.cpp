#include "session.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <cmath>
#include <string>

#include "fsgen/error.hpp"
#include "rpc/remote_session.hpp"

namespace fsgen {
namespace {

std::atomic<double> decode_jitter{0.0};

void jitter() {
  const double most = decode_jitter.load(std::memory_order_relaxed);
  if (!(most > 0)) return;
  thread_local std::mt19937 rng{std::random_device{}()};
  std::this_thread::sleep_for(std::chrono::duration<double>(std::uniform_real_distribution<double>(0, most)(rng)));
}

bool abort_requested(void* data) {
  const auto* flags = static_cast<const CancelFlags*>(data);
  return flags != nullptr && flags->requested();
}

bool all_finite(const float* row, int n) {
  // A sum is finite only if every term is (logits are far from overflow).
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) sum += row[i];
  return std::isfinite(sum);
}

}  // namespace

void set_decode_jitter(double max_seconds) { decode_jitter.store(max_seconds); }

LocalSession::LocalSession(std::shared_ptr<const Weights> weights, const ModelOptions& options, const CancelFlags* cancel)
    : weights_(std::move(weights)),
      batch_(std::max(1, options.n_batch)),
      store_(size_t(std::max(0, options.prompt_cache_mib)) << 20) {
  llama_context_params params = llama_context_default_params();
  params.n_ctx = static_cast<uint32_t>(options.n_ctx);
  params.n_batch = static_cast<uint32_t>(options.n_batch);
  params.n_ubatch = static_cast<uint32_t>(options.n_batch);
  params.n_seq_max = 1;
  params.n_threads = options.n_threads;
  params.n_threads_batch = options.n_threads;
  params.no_perf = true;
  params.flash_attn_type = static_cast<llama_flash_attn_type>(options.flash_attn);
  // fsgen never asks for more output rows than a verify batch: a small logits buffer instead of
  // n_batch rows of the whole vocabulary (hundreds of MB for a 150k vocabulary).
  params.n_outputs_max = static_cast<uint32_t>(std::min(options.n_batch, kMaxOutputRows));
  params.abort_callback = abort_requested;
  params.abort_callback_data = const_cast<CancelFlags*>(cancel);
  ctx_.reset(llama_init_from_model(weights_->model.get(), params));
  if (!ctx_) {
    throw ModelLoadError("llama.cpp could not create a context for " + weights_->info.path + " (n_ctx=" +
                         std::to_string(options.n_ctx) + "); try a smaller n_ctx");
  }
  n_vocab_ = llama_vocab_n_tokens(weights_->vocab);
  n_ctx_ = static_cast<int>(llama_n_ctx(ctx_.get()));
  n_batch_ = static_cast<int>(llama_n_batch(ctx_.get()));
}

void LocalSession::clear() {
  llama_memory_clear(llama_get_memory(ctx_.get()), true);
  cached_.clear();
  outputs_valid_ = false;
}

void LocalSession::rollback(size_t keep) {
  if (keep >= cached_.size()) return;
  outputs_valid_ = false;
  if (llama_memory_seq_rm(llama_get_memory(ctx_.get()), 0, static_cast<llama_pos>(keep), -1)) {
    cached_.resize(keep);
  } else {
    clear();  // memories that cannot drop a suffix (recurrent models) start over
  }
}

void LocalSession::eval(const Token* seq, size_t n, size_t n_rows) {
  if (n == 0 || n_rows == 0 || n_rows > n) throw InvalidArgumentError("eval needs 1 <= n_rows <= n tokens");
  if (n > static_cast<size_t>(n_ctx_)) {
    throw ContextOverflowError(std::to_string(n) + " tokens do not fit in the context of " + std::to_string(n_ctx_));
  }
  if (n_rows > static_cast<size_t>(n_batch_)) throw InvalidArgumentError("more output rows than the batch size");
  const size_t first_output = n - n_rows;

  size_t keep = 0;
  const size_t limit = std::min(n, cached_.size());
  while (keep < limit && cached_[keep] == seq[keep]) ++keep;

  last_seconds_ = 0;
  last_decoded_ = 0;
  if (keep == n && cached_.size() == n && outputs_valid_ && out_first_ <= first_output) {
    row_offset_ = first_output - row_base_;
    rows_ = n_rows;
    return;  // the last decode already left these logits
  }
  keep = switch_prompt(seq, n, std::min(keep, first_output));
  keep = std::min(keep, first_output);
  rollback(keep);

  const auto start = std::chrono::steady_clock::now();
  jitter();
  const size_t begin = cached_.size();
  // Chunks of n_batch, as llama.cpp's own tools do, except that every output row must land in
  // the last chunk.
  const size_t last_normal_start = begin + ((n - begin - 1) / n_batch_) * n_batch_;
  const size_t tail_start = last_normal_start <= first_output ? last_normal_start : first_output;
  for (size_t pos = begin; pos < tail_start; pos = std::min(tail_start, pos + n_batch_)) {
    decode_range(seq, pos, std::min(tail_start, pos + n_batch_), n);
  }
  decode_range(seq, tail_start, n, first_output);
  last_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  last_decoded_ = static_cast<int>(n - begin);
  count_decode();

  out_first_ = first_output;
  row_base_ = tail_start;
  row_offset_ = first_output - tail_start;
  rows_ = n_rows;
  outputs_valid_ = true;
  for (size_t r = 0; r < n_rows; ++r) {
    if (!all_finite(logits(r), n_vocab_)) {
      outputs_valid_ = false;
      throw GenerationError("the model produced non-finite logits (NaN or infinity) for " + weights_->info.path +
                            "; its weights are likely corrupt");
    }
  }
}

size_t LocalSession::switch_prompt(const Token* seq, size_t n, size_t keep) {
  // A jump as short as a speculative round's rollback leaves nothing worth keeping; a restore
  // (a copy) pays once it spares reading a few tokens, so a step's eval never searches the store.
  constexpr size_t kMinSaved = kMaxOutputRows;
  constexpr size_t kMinRestored = 16;
  const bool restore = n > keep + kMinRestored && store_.best_prefix(seq, n) > keep + kMinRestored;
  if (restore || cached_.size() > keep + kMinSaved) store_.save(ctx_.get(), cached_);
  if (!restore) return keep;
  outputs_valid_ = false;
  if (!store_.restore(ctx_.get(), seq, n, cached_)) {
    clear();
    return 0;
  }
  return common_prefix(cached_, seq, n);
}

void LocalSession::decode_range(const Token* seq, size_t begin, size_t end, size_t first_output) {
  outputs_valid_ = false;
  batch_.clear();
  for (size_t pos = begin; pos < end; ++pos) {
    batch_.add(seq[pos], static_cast<llama_pos>(pos), pos >= first_output);
  }
  const int32_t status = llama_decode(ctx_.get(), batch_.get());
  if (status == 0) {
    cached_.insert(cached_.end(), seq + begin, seq + end);
    return;
  }
  // Aborted or failed: drop whatever part of the batch reached the cache.
  llama_memory_seq_rm(llama_get_memory(ctx_.get()), 0, static_cast<llama_pos>(cached_.size()), -1);
  if (status == 2) throw Cancelled{};
  if (status == 1) throw ContextOverflowError("no room left in the KV cache for " + std::to_string(end - begin) + " tokens");
  throw GenerationError("llama_decode failed with status " + std::to_string(status));
}

const float* LocalSession::logits(size_t row) const {
  return llama_get_logits_ith(ctx_.get(), static_cast<int32_t>(row_offset_ + row));
}

SubstitutingSession::SubstitutingSession(std::unique_ptr<Session> inner, std::vector<Token> substitutes)
    : inner_(std::move(inner)), substitutes_(std::move(substitutes)) {
  n_vocab_ = inner_->n_vocab();
  n_ctx_ = inner_->n_ctx();
}

size_t SubstitutingSession::cached_prefix(const Token* seq, size_t n) const {
  std::vector<Token> read(seq, seq + n);
  for (Token& t : read)
    if (lacks(t)) t = substitutes_[size_t(t - n_vocab_)];
  return inner_->cached_prefix(read.data(), n);
}

void SubstitutingSession::eval(const Token* seq, size_t n, size_t n_rows) {
  const Token* read = seq;
  const auto lacks = [this](Token t) { return this->lacks(t); };
  if (std::any_of(seq, seq + n, lacks)) {
    read_.assign(seq, seq + n);
    for (Token& t : read_)
      if (lacks(t)) t = substitutes_[size_t(t - n_vocab_)];
    read = read_.data();
  }
  inner_->eval(read, n, n_rows);
  rows_ = n_rows;
  last_seconds_ = inner_->last_decode_seconds();
  last_decoded_ = inner_->last_decoded_tokens();
  count_decode();
}

std::unique_ptr<Session> make_session(std::shared_ptr<const Weights> weights, const ModelOptions& options,
                                      const CancelFlags* cancel) {
  if (weights->remote) return std::make_unique<rpc::RemoteSession>(std::move(weights), options, cancel);
  return std::make_unique<LocalSession>(std::move(weights), options, cancel);
}

}  // namespace fsgen
