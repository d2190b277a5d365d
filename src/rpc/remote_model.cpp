#include "rpc/remote_model.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "fsgen/error.hpp"
#include "llama.h"
#include "rpc/endpoint.hpp"
#include "weights.hpp"

extern char** environ;

namespace fsgen::rpc {
namespace {

using Clock = std::chrono::steady_clock;

// How often a wait for the helper looks at the cancel flags.
constexpr auto kCancelPoll = std::chrono::milliseconds(20);

// A descriptor numbered >= 10 and close-on-exec, so that the helper's dup2 onto 2, 3 and 4 can
// never overwrite one of the sources.
int high_fd(int fd) {
  if (fd < 0) return fd;
  const int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
  ::close(fd);
  return high;
}

int anonymous_file(const char* name) {
#if defined(__linux__)
  return high_fd(static_cast<int>(::memfd_create(name, MFD_CLOEXEC)));
#else
  std::string templ = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/fsgen-XXXXXX";
  const int fd = ::mkstemp(templ.data());
  if (fd >= 0) ::unlink(templ.c_str());
  return high_fd(fd);
#endif
}

Clock::duration span(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", s);
  return buf;
}

}  // namespace

std::string RemoteModel::helper_path() {
  if (const char* env = std::getenv("FSGEN_RPC_HELPER"); env != nullptr && *env) return env;
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&llama_backend_init), &info) != 0 && info.dli_fname != nullptr) {
    std::string lib = info.dli_fname;
    const size_t slash = lib.find_last_of('/');
    return (slash == std::string::npos ? std::string(".") : lib.substr(0, slash)) + "/fsgen-rpc";
  }
  return "fsgen-rpc";
}

RemoteModel::RemoteModel(std::string path, const ModelOptions& options, int n_vocab)
    : path_(std::move(path)), options_(options), n_vocab_(n_vocab) {
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    start();
  } catch (...) {
    kill_helper(true);
    close_files();
    throw;
  }
}

RemoteModel::~RemoteModel() {
  std::lock_guard<std::mutex> lock(mutex_);
  kill_helper();
  close_files();
}

std::string RemoteModel::endpoints() const { return join(options_.rpc, ", "); }

RemoteStats RemoteModel::stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (owed_) settle(Clock::now());
  RemoteStats s = stats_;
  s.endpoints = options_.rpc;
  s.lost = lost_ || owed_;
  return s;
}

bool RemoteModel::lost() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (owed_) settle(Clock::now());
  return lost_ || owed_;
}

uint64_t RemoteModel::generation() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return generation_;
}

void RemoteModel::restart() {
  std::lock_guard<std::mutex> lock(mutex_);
  // The server may still answer the given-up call within its grace: then its weights are still
  // there and nothing needs to travel again.
  if (owed_ && settle(std::max(Clock::now(), owed_since_ + span(options_.rpc_timeout)))) {
    try {
      ready();
      return;
    } catch (const Error&) {
      // A free that failed: reload below.
    }
  }
  kill_helper();
  lost_ = true;  // until start() succeeds
  start();
}

void RemoteModel::start() {
  for (const auto& text : options_.rpc) probe(parse_endpoint(text), std::min(options_.rpc_timeout, 10.0));
  const std::string helper = helper_path();
  if (::access(helper.c_str(), X_OK) != 0) {
    throw ModelLoadError("fsgen's RPC helper " + helper + " is missing or not executable (set FSGEN_RPC_HELPER)");
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    throw ModelLoadError(std::string("socketpair failed: ") + std::strerror(errno));
  }
  socket_ = high_fd(pair[0]);
  const int child_socket = high_fd(pair[1]);
  // The shared logits outlive helpers: a session on another thread may still read its last rows
  // while a reload replaces the helper.
  if (logits_ == nullptr) {
    logits_bytes_ = size_t(kMaxContexts) * kMaxOutputRows * size_t(n_vocab_) * sizeof(float);
    logits_fd_ = anonymous_file("fsgen-logits");
    if (logits_fd_ >= 0 && ::ftruncate(logits_fd_, static_cast<off_t>(logits_bytes_)) == 0) {
      void* map = ::mmap(nullptr, logits_bytes_, PROT_READ, MAP_SHARED, logits_fd_, 0);
      logits_ = map == MAP_FAILED ? nullptr : static_cast<float*>(map);
    }
  }
  if (stderr_fd_ >= 0) ::close(stderr_fd_);
  stderr_fd_ = anonymous_file("fsgen-rpc-stderr");
  if (logits_ == nullptr || stderr_fd_ < 0 || child_socket < 0) {
    if (child_socket >= 0) ::close(child_socket);
    kill_helper();
    throw ModelLoadError(std::string("cannot create the helper's shared memory: ") + std::strerror(errno));
  }

  std::vector<std::string> args = {helper, "session", "--model", path_, "--rpc", join(options_.rpc, ","),
                                   "--n-gpu-layers", std::to_string(options_.n_gpu_layers == 0 ? -1 : options_.n_gpu_layers),
                                   "--n-vocab", std::to_string(n_vocab_), "--parent", std::to_string(::getpid())};
  if (options_.verbose) args.push_back("--verbose");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  if (!options_.verbose) posix_spawn_file_actions_adddup2(&actions, stderr_fd_, 2);
  posix_spawn_file_actions_adddup2(&actions, child_socket, kSocketFd);
  posix_spawn_file_actions_adddup2(&actions, logits_fd_, kLogitsFd);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own process group: a Ctrl-C in the terminal stops the caller's generation (fsgen cancels
  // it), not the helper holding the remote weights. Default signal actions, whatever the caller
  // ignores (Python ignores SIGPIPE).
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  const int spawned = ::posix_spawn(&pid_, helper.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(child_socket);
  if (spawned != 0) {
    pid_ = -1;
    kill_helper();
    throw ModelLoadError("cannot start fsgen's RPC helper " + helper + ": " + std::strerror(spawned ? spawned : errno));
  }

  // Loading: progress messages keep it alive; each gap may last up to rpc_timeout.
  for (;;) {
    std::string message;
    Reply reply{};
    try {
      reply = receive(options_.rpc_timeout, &message, "loading");
    } catch (const GenerationError& e) {
      throw ModelLoadError("loading " + path_ + " on the RPC server(s) " + endpoints() + " failed: " + e.what());
    }
    if (reply.status == Status::Progress) continue;
    if (reply.status == Status::Ready) {
      n_params_ = reply.a;
      size_bytes_ = reply.b;
      description_ = message;
      break;
    }
    kill_helper();
    throw ModelLoadError("loading " + path_ + " on the RPC server(s) " + endpoints() + " failed: " + message);
  }
  lost_ = false;
  ++generation_;
  std::fill(std::begin(used_), std::end(used_), false);
}

void RemoteModel::kill_helper(bool force) noexcept {
  if (pid_ > 0) {
    // Closing the socket ends an idle helper; one stuck on the network gets SIGKILL.
    ::close(socket_);
    socket_ = -1;
    int status = 0;
    for (int i = 0; i < (force ? 0 : 20); ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      ::usleep(i < 5 ? 1000 : 10000);
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      pid_ = -1;
    }
  }
  if (socket_ >= 0) ::close(socket_);
  socket_ = -1;
  owed_ = false;
  free_later_.clear();
  // stderr_fd_ stays open until the next start: lose() reads it after the kill.
}

void RemoteModel::close_files() noexcept {
  if (logits_ != nullptr) ::munmap(logits_, logits_bytes_);
  logits_ = nullptr;
  if (logits_fd_ >= 0) ::close(logits_fd_);
  logits_fd_ = -1;
  if (stderr_fd_ >= 0) ::close(stderr_fd_);
  stderr_fd_ = -1;
}

std::string RemoteModel::helper_stderr() const {
  if (stderr_fd_ < 0) return "";
  const off_t end = ::lseek(stderr_fd_, 0, SEEK_END);
  if (end <= 0) return "";
  const off_t from = std::max<off_t>(0, end - 600);
  std::string text(static_cast<size_t>(end - from), '\0');
  const ssize_t n = ::pread(stderr_fd_, text.data(), text.size(), from);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  // The last lines say why (ggml's abort message): keep up to three, on one line.
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  size_t from_line = text.size();
  for (int lines = 0; lines < 3 && from_line != std::string::npos && from_line > 0; ++lines) {
    from_line = text.rfind('\n', from_line - 1);
  }
  if (from_line != std::string::npos && from_line < text.size()) text = text.substr(from_line + 1);
  for (char& c : text) if (c == '\n') c = ' ';
  return text;
}

void RemoteModel::drop() noexcept {
  kill_helper(true);
  lost_ = true;
}

void RemoteModel::lose(const std::string& cause) {
  drop();
  const std::string log = helper_stderr();
  throw GenerationError("the remote model on " + endpoints() + " is lost: " + cause +
                        (log.empty() ? "" : " (helper: " + log + ")") +
                        ". The helper was stopped; reload the model (Pair.reload_large(), or load the Model again) once the "
                        "server is back");
}

Reply RemoteModel::receive(double timeout, std::string* message, const char* what) {
  Reply reply{};
  switch (read_reply(socket_, after(timeout), timeout, &reply, message)) {
    case Frame::Whole: return reply;
    case Frame::None: lose(std::string("no answer while ") + what + " within rpc_timeout=" + seconds_text(timeout) + " s");
    case Frame::Oversize: lose("the helper announced a message over " + std::to_string(kMaxMessageBytes) + " bytes");
    case Frame::Broken: break;
  }
  lose(std::string("the helper ended while ") + what + " (server gone or connection lost)");
}

void RemoteModel::give_up(const char* what, bool cancel_sent) {
  // The helper cannot be interrupted inside a chunk, and may finish it: told to stop there, it
  // answers, and the weights stay on the server. Until then (or until the grace runs out) the
  // model counts as lost.
  Request cancel{};
  cancel.op = Op::Cancel;
  if (!cancel_sent && !send_all(socket_, &cancel, sizeof(cancel))) {
    lose(std::string("the helper ended while ") + what + " (server gone or connection lost)");
  }
  owed_ = true;
  owed_since_ = Clock::now();
  throw GenerationError("the remote model on " + endpoints() + " gave no sign of progress while " + what +
                        " within rpc_timeout=" + seconds_text(options_.rpc_timeout) +
                        " s; the call was given up. The model counts as lost until the server answers it (within another "
                        "rpc_timeout: its weights are still loaded there) or it is reloaded (Pair.reload_large(), or "
                        "load the Model again)");
}

bool RemoteModel::settle(Clock::time_point until) noexcept {
  while (owed_ && !lost_ && pid_ > 0) {
    Reply reply{};
    std::string message;
    switch (read_reply(socket_, until, options_.rpc_timeout, &reply, &message)) {
      case Frame::Whole:
        if (reply.status == Status::Progress) {
          owed_since_ = Clock::now();  // the server answers: the grace starts again
        } else {
          owed_ = false;  // whatever it says, the helper is idle again
        }
        continue;
      case Frame::None:
        if (Clock::now() >= owed_since_ + span(options_.rpc_timeout)) drop();
        return false;
      case Frame::Broken:
      case Frame::Oversize:
        drop();
        return false;
    }
  }
  return !owed_ && !lost_ && pid_ > 0;
}

void RemoteModel::ready() {
  if (owed_ && !settle(Clock::now()) && !lost_) {
    throw GenerationError("the remote model on " + endpoints() +
                          " is lost for now: a call given up after rpc_timeout=" + seconds_text(options_.rpc_timeout) +
                          " s is still running there; it comes back once the server answers, or reload it "
                          "(Pair.reload_large(), or load the Model again)");
  }
  if (lost_ || pid_ <= 0) {
    throw GenerationError("the remote model on " + endpoints() +
                          " is lost (an earlier call failed); reload it (Pair.reload_large(), or load the Model again) once the "
                          "server is back");
  }
  while (!free_later_.empty()) {
    Request request{};
    request.op = Op::FreeContext;
    request.context = free_later_.back();
    free_later_.pop_back();
    std::string message;
    exchange(request, nullptr, 0, &message, nullptr);
  }
}

Reply RemoteModel::call(const Request& request, const void* extra, size_t extra_size, std::string* message,
                        const CancelFlags* cancel) {
  ready();
  return exchange(request, extra, extra_size, message, cancel);
}

Reply RemoteModel::exchange(const Request& request, const void* extra, size_t extra_size, std::string* message,
                            const CancelFlags* cancel) {
  const char* what = request.op == Op::Eval         ? "decoding"
                     : request.op == Op::NewContext ? "creating a context"
                                                    : "freeing a context";
  if (!send_all(socket_, &request, sizeof(request)) || (extra_size > 0 && !send_all(socket_, extra, extra_size))) {
    lose("the helper ended (server gone or connection lost)");
  }
  const double timeout = options_.rpc_timeout;
  Clock::time_point deadline = after(timeout);
  bool cancel_sent = false;
  for (;;) {
    // With a cancel flag to watch: short waits.
    const Clock::time_point until =
        cancel != nullptr && !cancel_sent ? std::min(deadline, Clock::now() + kCancelPoll) : deadline;
    Reply reply{};
    switch (read_reply(socket_, until, timeout, &reply, message)) {
      case Frame::Whole:
        if (reply.status != Status::Progress) return reply;
        deadline = after(timeout);  // a chunk done: the server is alive
        continue;
      case Frame::None:
        break;
      case Frame::Oversize:
        lose("the helper announced a message over " + std::to_string(kMaxMessageBytes) + " bytes");
      case Frame::Broken:
        lose(std::string("the helper ended while ") + what + " (server gone or connection lost)");
    }
    if (cancel != nullptr && !cancel_sent && cancel->requested()) {
      Request stop{};
      stop.op = Op::Cancel;
      if (!send_all(socket_, &stop, sizeof(stop))) lose("the helper ended (server gone or connection lost)");
      cancel_sent = true;
    }
    if (Clock::now() >= deadline) give_up(what, cancel_sent);
  }
}

namespace {
[[noreturn]] void rethrow(const Reply& reply, const std::string& message) {
  switch (reply.status) {
    case Status::InvalidArgument: throw InvalidArgumentError(message);
    case Status::ContextOverflow: throw ContextOverflowError(message);
    case Status::ModelLoad: throw ModelLoadError(message);
    default: throw GenerationError(message);
  }
}
}  // namespace

RemoteModel::Context RemoteModel::new_context(const ModelOptions& options) {
  std::lock_guard<std::mutex> lock(mutex_);
  int id = 0;
  while (id < kMaxContexts && used_[id]) ++id;
  if (id == kMaxContexts) {
    throw InvalidArgumentError("a remote model holds at most " + std::to_string(kMaxContexts) + " contexts at once");
  }
  Request request{};
  request.op = Op::NewContext;
  request.context = id;
  request.n_ctx = options.n_ctx;
  request.n_batch = options.n_batch;
  request.n_threads = options.n_threads;
  request.flash_attn = options.flash_attn;
  request.prompt_cache_mib = options.prompt_cache_mib;
  std::string message;
  const Reply reply = call(request, nullptr, 0, &message);
  if (reply.status != Status::Ok) rethrow(reply, message);
  used_[id] = true;
  return Context{id, reply.n_ctx, reply.n_batch};
}

int RemoteModel::eval(int id, uint64_t generation, size_t keep, const Token* tokens, size_t n_new, size_t n_rows,
                      const CancelFlags* cancel, size_t* held) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (generation != generation_ && !lost_) {
    throw GenerationError("the remote model on " + endpoints() + " was reloaded during this call; try again");
  }
  Request request{};
  request.op = Op::Eval;
  request.context = id;
  request.keep = keep;
  request.n_new = n_new;
  request.n_rows = n_rows;
  std::string message;
  const auto start = Clock::now();
  const Reply reply = call(request, tokens, n_new * sizeof(Token), &message, cancel);
  if (reply.status == Status::Cancelled) {
    *held = reply.a;
    throw Cancelled{};
  }
  if (reply.status != Status::Ok) rethrow(reply, message);
  stats_.evals += 1;
  stats_.round_trip_seconds += std::chrono::duration<double>(Clock::now() - start).count();
  stats_.helper_seconds += reply.seconds;
  stats_.rows += n_rows;
  return reply.decoded;
}

void RemoteModel::free_context(int id, uint64_t generation) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (generation != generation_ || lost_ || pid_ <= 0 || id < 0) return;
  used_[id] = false;
  if (owed_ && !settle(Clock::now())) {
    if (!lost_) free_later_.push_back(id);  // the helper is busy: sent before the next call
    return;
  }
  Request request{};
  request.op = Op::FreeContext;
  request.context = id;
  std::string message;
  try {
    call(request, nullptr, 0, &message);
  } catch (const Error&) {
    // Lost or given up while freeing: the helper frees it with everything else.
  }
}

const float* RemoteModel::rows(int id) const {
  return logits_ + size_t(id) * kMaxOutputRows * size_t(n_vocab_);
}

}  // namespace fsgen::rpc
