// The messages between fsgen and its RPC helper process (fsgen-rpc session), over a Unix socket
// pair. Logits rows do not travel on the socket: the helper writes them into a shared memory
// file with one slot of kMaxOutputRows rows per context, and the reply says how many.
#pragma once
#include <cstdint>

namespace fsgen::rpc {

constexpr int kMaxContexts = 8;        // contexts one remote model can hold at once
constexpr int kSocketFd = 3;           // the helper's end of the socket pair
constexpr int kLogitsFd = 4;           // the shared logits file

enum class Op : uint32_t { NewContext = 1, Eval = 2, FreeContext = 4 };

struct Request {
  Op op;
  int32_t context;
  // NewContext
  int32_t n_ctx, n_batch, n_threads, flash_attn;
  // Eval: the sequence is the helper's previous one cut to `keep`, then n_new tokens (following
  // this header); the logits of its last n_rows positions are asked for.
  uint64_t keep, n_new, n_rows;
};

enum class Status : uint32_t {
  Ok = 0,
  Progress = 1,  // loading goes on (one per llama.cpp progress callback): the deadline restarts
  Ready = 2,     // loaded: a = n_params, b = size_bytes, message = description
  ModelLoad = 10,
  InvalidArgument = 11,
  ContextOverflow = 12,
  Generation = 13,
  Other = 14,
};

struct Reply {
  Status status;
  int32_t context;
  int32_t n_ctx, n_batch;
  int32_t decoded;
  uint32_t message_bytes;  // text following this header (an error, or the description)
  double seconds;
  uint64_t a, b;
};

}  // namespace fsgen::rpc
