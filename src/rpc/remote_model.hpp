// A model on llama.cpp's RPC backend, held by a helper process that fsgen starts and owns.
//
// Why a process: in the pinned llama.cpp, ggml-rpc ends the process on any network failure
// (GGML_ABORT on a failed connect or handshake, RPC_STATUS_ASSERT on a failed send/recv, on its
// own thread) and sets no socket timeouts. So the helper holds the RPC-backed weights and
// contexts; this side sends token batches, reads logits rows from shared memory, and puts a
// deadline on every wait for the helper: rpc_timeout from the call or from its last progress (a
// long eval reports each n_batch chunk). A helper that dies is reaped, the call fails with
// GenerationError, and the model is "lost" until restart(). A call past its deadline fails the
// same way but the helper is kept for another rpc_timeout: the server may still answer, and the
// weights it holds would otherwise have to travel again.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fsgen/options.hpp"
#include "fsgen/remote.hpp"
#include "fsgen/types.hpp"
#include "rpc/helper_protocol.hpp"
#include "session.hpp"

namespace fsgen::rpc {

struct Reply;

class RemoteModel {
 public:
  // Probes the endpoints, starts the helper and waits for it to load the model (each load step
  // within options.rpc_timeout). Throws ModelLoadError naming the endpoints and the cause.
  RemoteModel(std::string path, const ModelOptions& options, int n_vocab);
  ~RemoteModel();
  RemoteModel(const RemoteModel&) = delete;
  RemoteModel& operator=(const RemoteModel&) = delete;

  // What the helper reported after loading.
  uint64_t n_params() const { return n_params_; }
  uint64_t size_bytes() const { return size_bytes_; }
  const std::string& description() const { return description_; }
  std::string endpoints() const;

  // Lost: a call failed, or one given up at its deadline has not been answered yet (the model
  // comes back by itself when it is, within another rpc_timeout).
  bool lost();
  RemoteStats stats();
  // Waits what is left of a given-up call's grace for its answer (then nothing is reloaded);
  // otherwise kills a helper that is still running, probes again and reloads the weights (a
  // restarted server has lost them). Sessions notice the new generation and recreate their contexts.
  void restart();
  uint64_t generation() const;

  struct Context {
    int id = -1;
    int n_ctx = 0;
    int n_batch = 0;
  };
  Context new_context(const ModelOptions& options);
  // Decodes in context `id`: see Request. Returns the helper's decoded-token count; rows are
  // then at rows(id).
  // `generation`: the one the context was made in (a reload in between fails the call).
  // `cancel` is watched while the helper works: it stops at its next chunk boundary, and
  // Cancelled is thrown with *held = the tokens of the sequence the context then holds.
  int eval(int id, uint64_t generation, size_t keep, const Token* tokens, size_t n_new, size_t n_rows,
           const CancelFlags* cancel, size_t* held);
  void free_context(int id, uint64_t generation) noexcept;
  const float* rows(int id) const;

  // The helper's path: $FSGEN_RPC_HELPER, else fsgen-rpc beside llama.cpp's shared library.
  static std::string helper_path();

 private:
  void start();                       // under mutex_
  void kill_helper(bool force = false) noexcept;  // under mutex_; force: SIGKILL at once
  void close_files() noexcept;                     // the shared logits and the stderr file
  // Under mutex_: throws while lost or while a given-up call is unanswered; sends the frees that
  // waited for it.
  void ready();
  Reply call(const Request& request, const void* extra, size_t extra_size, std::string* message,
             const CancelFlags* cancel = nullptr);
  Reply exchange(const Request& request, const void* extra, size_t extra_size, std::string* message,
                 const CancelFlags* cancel);
  Reply receive(double timeout, std::string* message, const char* what);  // loading: one message
  [[noreturn]] void give_up(const char* what, bool cancel_sent);
  // Takes the answer of a given-up call if it comes by `until`; false if it has not (and the
  // helper is dropped once the grace is over or the stream broke).
  bool settle(std::chrono::steady_clock::time_point until) noexcept;
  void drop() noexcept;  // kill the helper: lost
  [[noreturn]] void lose(const std::string& cause);
  std::string helper_stderr() const;

  std::string path_;
  ModelOptions options_;
  int n_vocab_;
  mutable std::mutex mutex_;
  pid_t pid_ = -1;
  int socket_ = -1;
  int logits_fd_ = -1;
  int stderr_fd_ = -1;
  float* logits_ = nullptr;
  size_t logits_bytes_ = 0;
  bool lost_ = false;
  bool owed_ = false;  // a call was given up at its deadline: its answer is still to come
  std::chrono::steady_clock::time_point owed_since_{};
  std::vector<int> free_later_;  // contexts freed while owed_
  uint64_t generation_ = 0;
  bool used_[kMaxContexts] = {};
  uint64_t n_params_ = 0, size_bytes_ = 0;
  RemoteStats stats_;
  std::string description_;
};

}  // namespace fsgen::rpc
