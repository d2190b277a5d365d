#include "rpc/remote_session.hpp"

#include <algorithm>
#include <chrono>

#include "fsgen/error.hpp"
#include "weights.hpp"

namespace fsgen::rpc {

RemoteSession::RemoteSession(std::shared_ptr<const Weights> weights, const ModelOptions& options,
                             const CancelFlags* cancel)
    : weights_(std::move(weights)), remote_(*weights_->remote), options_(options), cancel_(cancel) {
  n_vocab_ = weights_->info.n_vocab;
  ensure_context();
}

RemoteSession::~RemoteSession() { remote_.free_context(id_, generation_); }

void RemoteSession::ensure_context() {
  const uint64_t generation = remote_.generation();
  if (id_ >= 0 && generation == generation_) return;
  // The helper was restarted (reload after a loss): a new context, an empty cache.
  id_ = -1;
  mirror_.clear();
  const RemoteModel::Context context = remote_.new_context(options_);
  id_ = context.id;
  generation_ = generation;
  n_ctx_ = context.n_ctx;
}

void RemoteSession::eval(const Token* seq, size_t n, size_t n_rows) {
  if (n == 0 || n_rows == 0 || n_rows > n) throw InvalidArgumentError("eval needs 1 <= n_rows <= n tokens");
  if (n_rows > static_cast<size_t>(kMaxOutputRows)) throw InvalidArgumentError("more output rows than a verify batch");
  ensure_context();
  if (n > static_cast<size_t>(n_ctx_)) {  // as LocalSession says it, before any token travels
    throw ContextOverflowError(std::to_string(n) + " tokens do not fit in the context of " + std::to_string(n_ctx_));
  }
  size_t keep = 0;
  const size_t limit = std::min(n, mirror_.size());
  while (keep < limit && mirror_[keep] == seq[keep]) ++keep;
  const auto start = std::chrono::steady_clock::now();
  last_seconds_ = 0;
  last_decoded_ = 0;
  // Unknown until the helper answers. After a failure it is sent whole next time: the helper
  // still knows what its cache holds and decodes only the rest.
  mirror_.clear();
  size_t held = 0;
  try {
    last_decoded_ = remote_.eval(id_, generation_, keep, seq + keep, n - keep, n_rows, cancel_, &held);
  } catch (const Cancelled&) {
    mirror_.assign(seq, seq + std::min(held, n));
    throw;
  }
  mirror_.assign(seq, seq + n);
  rows_ = n_rows;
  // The planner weighs what a call costs from here: the round trip, not the remote decode.
  if (last_decoded_ > 0) {
    last_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  count_decode();
}

const float* RemoteSession::logits(size_t row) const { return remote_.rows(id_) + row * size_t(n_vocab_); }

}  // namespace fsgen::rpc
