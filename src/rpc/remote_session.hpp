// The Session strategies see for a model on RPC servers: its context lives in the remote model's
// helper process; eval() sends only the tokens past the common prefix, and the logits rows are read
// from the shared memory the helper wrote them to.
#pragma once
#include <memory>
#include <vector>

#include "rpc/remote_model.hpp"
#include "session.hpp"

namespace fsgen::rpc {

// A Session whose context lives in the helper of a remote model.
class RemoteSession final : public Session {
 public:
  // cancel: watched while the helper decodes (it stops between n_batch chunks).
  RemoteSession(std::shared_ptr<const Weights> weights, const ModelOptions& options, const CancelFlags* cancel);
  ~RemoteSession() override;

  using Session::eval;
  void eval(const Token* seq, size_t n, size_t n_rows = 1) override;
  const float* logits(size_t row) const override;
  size_t n_cached() const override { return mirror_.size(); }
  using Session::cached_prefix;
  size_t cached_prefix(const Token* seq, size_t n) const override { return common_prefix(mirror_, seq, n); }

 private:
  void ensure_context();

  std::shared_ptr<const Weights> weights_;
  RemoteModel& remote_;
  ModelOptions options_;
  const CancelFlags* cancel_;
  int id_ = -1;
  uint64_t generation_ = 0;
  std::vector<Token> mirror_;  // the sequence the helper's context holds (as last asked)
};

}  // namespace fsgen::rpc
