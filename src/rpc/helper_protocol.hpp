// The messages between fsgen and its RPC helper process (fsgen-rpc session), over a Unix socket
// pair. Logits rows do not travel on the socket: the helper writes them into a shared memory
// file with one slot of kMaxOutputRows rows per context, and the reply says how many.
//
// An eval longer than one n_batch chunk is decoded a chunk at a time: the helper sends Progress
// after each (fsgen's deadline is per chunk) and, between chunks, stops when fsgen has sent
// Cancel (ggml-rpc has no abort hook: one chunk cannot be interrupted).
#pragma once
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace fsgen::rpc {

constexpr int kMaxContexts = 8;        // contexts one remote model can hold at once
constexpr int kSocketFd = 3;           // the helper's end of the socket pair
constexpr int kLogitsFd = 4;           // the shared logits file
// The longest text a reply carries (an error, the description): the helper cuts longer ones, and
// fsgen takes a longer announcement for a broken helper rather than read gigabytes.
constexpr uint32_t kMaxMessageBytes = 16u << 20;

// Cancel: stop the eval in progress at its next chunk boundary. Never answered; one that arrives
// after its eval ended is skipped.
enum class Op : uint32_t { NewContext = 1, Eval = 2, FreeContext = 4, Cancel = 5 };

struct Request {
  Op op;
  int32_t context;
  // NewContext
  int32_t n_ctx, n_batch, n_threads, flash_attn, prompt_cache_mib;
  // Eval: the sequence is the helper's previous one cut to `keep`, then n_new tokens (following
  // this header); the logits of its last n_rows positions are asked for.
  uint64_t keep, n_new, n_rows;
};

enum class Status : uint32_t {
  Ok = 0,
  // Loading goes on (one per llama.cpp progress callback), or an eval's chunk is done (a = the
  // tokens the context holds): the deadline restarts.
  Progress = 1,
  Ready = 2,      // loaded: a = n_params, b = size_bytes, message = description
  Cancelled = 3,  // an eval stopped between chunks: a = the tokens the context holds
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

// ---- framing, shared by both ends ----

using WireClock = std::chrono::steady_clock;

inline WireClock::time_point after(double seconds) {
  return WireClock::now() + std::chrono::duration_cast<WireClock::duration>(std::chrono::duration<double>(seconds));
}

// Writes all of it (one send may take part). False when the other end is gone.
inline bool send_all(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
#if defined(MSG_NOSIGNAL)
    const ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
#else
    const ssize_t n = ::send(fd, p, size, 0);
#endif
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Waits until fd is readable: 1 readable (or closed), 0 not by the deadline, -1 failed.
inline int wait_readable(int fd, WireClock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - WireClock::now()).count();
    pollfd pfd{fd, POLLIN, 0};
    const int r = ::poll(&pfd, 1, static_cast<int>(std::clamp<long long>(left, 0, 1 << 30)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r > 0) return 1;
    if (left <= 0) return 0;
  }
}

// Reads exactly `size` bytes, looping over partial reads, by the deadline: 1 done, 0 timed out,
// -1 closed or failed.
inline int recv_all(int fd, void* data, size_t size, WireClock::time_point deadline) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const int w = wait_readable(fd, deadline);
    if (w <= 0) return w;
    const ssize_t n = ::recv(fd, p, size, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return -1;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return 1;
}

enum class Frame {
  Whole,     // a reply and all of its message
  None,      // nothing arrived by `until`; nothing was consumed
  Broken,    // closed, or a reply begun and not finished in time: the stream is out of step
  Oversize,  // the reply announces more than kMaxMessageBytes (only its header was consumed)
};

// Reads one reply and its message whole. Waits for its first byte until `until`; the rest must
// follow within `rest` seconds (the sender writes a reply at once).
inline Frame read_reply(int fd, WireClock::time_point until, double rest, Reply* reply, std::string* message) {
  const int w = wait_readable(fd, until);
  if (w == 0) return Frame::None;
  if (w < 0) return Frame::Broken;
  if (recv_all(fd, reply, sizeof(*reply), after(rest)) != 1) return Frame::Broken;
  if (reply->message_bytes > kMaxMessageBytes) return Frame::Oversize;
  message->resize(reply->message_bytes);
  if (reply->message_bytes > 0 && recv_all(fd, message->data(), message->size(), after(rest)) != 1) {
    return Frame::Broken;
  }
  return Frame::Whole;
}

}  // namespace fsgen::rpc
