// fsgen-rpc: the executable behind fsgen's use of llama.cpp's RPC backend.
//
//   fsgen-rpc serve --host H --port P [--threads N] [--cache DIR] [--allow-remote]
//       ggml's RPC server with this build's backends (`fsgen rpc-server` runs this).
//   fsgen-rpc session --model PATH --rpc EP[,EP...] --n-gpu-layers N --n-vocab V --parent PID [--verbose]
//       the helper process of a remote model (rpc/remote_model.hpp): started by fsgen, talks on
//       descriptor 3 (helper_protocol.hpp) and writes logits rows into descriptor 4.
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fsgen/error.hpp"
#include "ggml-backend.h"
#include "ggml-rpc.h"
#include "rpc/endpoint.hpp"
#include "rpc/helper_protocol.hpp"
#include "session.hpp"
#include "weights.hpp"

using namespace fsgen;
using namespace fsgen::rpc;

namespace {

std::map<std::string, std::string> parse_flags(int argc, char** argv, int first) {
  std::map<std::string, std::string> flags;
  for (int i = first; i < argc; ++i) {
    std::string key = argv[i];
    if (key.rfind("--", 0) != 0) throw InvalidArgumentError("unexpected argument " + key);
    key = key.substr(2);
    if (key == "allow-remote" || key == "verbose") {
      flags[key] = "1";
    } else if (i + 1 < argc) {
      flags[key] = argv[++i];
    } else {
      throw InvalidArgumentError("--" + key + " needs a value");
    }
  }
  return flags;
}

std::string flag(const std::map<std::string, std::string>& flags, const std::string& key, const std::string& fallback) {
  const auto it = flags.find(key);
  return it == flags.end() ? fallback : it->second;
}

int serve(const std::map<std::string, std::string>& flags) {
  const std::string host = flag(flags, "host", "127.0.0.1");
  const int port = std::stoi(flag(flags, "port", "50052"));
  const int threads = std::stoi(flag(flags, "threads", std::to_string(std::max(1u, std::thread::hardware_concurrency() / 2))));
  const std::string cache = flag(flags, "cache", "");
  if (!is_loopback(host) && !flags.count("allow-remote")) {
    std::fprintf(stderr, "fsgen rpc-server: %s is not a loopback address; pass --allow-remote to listen on it\n",
                 host.c_str());
    return 2;
  }
  std::fprintf(stderr,
               "\n"
               "  WARNING: llama.cpp's RPC protocol has NO AUTHENTICATION and NO ENCRYPTION.\n"
               "  Anyone who can reach %s:%d can run computations on this machine and read what it\n"
               "  computes. Use it on a trusted network only.\n\n",
               host.c_str(), port);
  std::vector<ggml_backend_dev_t> devices;
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {  // accelerators first, as llama.cpp's rpc-server
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    const auto type = ggml_backend_dev_type(dev);
    if (type == GGML_BACKEND_DEVICE_TYPE_GPU || type == GGML_BACKEND_DEVICE_TYPE_IGPU) devices.push_back(dev);
  }
  if (devices.empty()) {
    if (ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) devices.push_back(cpu);
  }
  if (devices.empty()) {
    std::fprintf(stderr, "fsgen rpc-server: no ggml device found\n");
    return 1;
  }
  const std::string endpoint = host + ":" + std::to_string(port);
  std::fflush(stdout);
  ggml_backend_rpc_start_server(endpoint.c_str(), cache.empty() ? nullptr : cache.c_str(), size_t(threads),
                                devices.size(), devices.data());
  // It returns only when it could not start (port taken, bad address).
  std::fprintf(stderr, "fsgen rpc-server: the server could not run on %s\n", endpoint.c_str());
  return 1;
}

// ---- session: the helper process ----

bool read_all(void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = ::recv(kSocketFd, p, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= size_t(n);
  }
  return true;
}

void reply(Reply r, const std::string& message = {}) {
  const size_t bytes = std::min<size_t>(message.size(), kMaxMessageBytes);
  r.message_bytes = static_cast<uint32_t>(bytes);
  if (!send_all(kSocketFd, &r, sizeof(r)) || (bytes > 0 && !send_all(kSocketFd, message.data(), bytes))) {
    std::_Exit(0);  // fsgen went away
  }
}

void reply_error(Status status, const std::string& message) {
  Reply r{};
  r.status = status;
  reply(r, message);
}

bool report_progress(float, void*) {
  Reply r{};
  r.status = Status::Progress;
  reply(r);
  return true;
}

struct Context {
  std::unique_ptr<LocalSession> session;
  std::vector<Token> seq;  // exactly what the session's cache holds
};

// A Cancel from fsgen waiting on the socket. Nothing else arrives while an eval runs: fsgen sends
// its next request only once this one is answered.
bool cancel_requested() {
  pollfd pfd{kSocketFd, POLLIN, 0};
  if (::poll(&pfd, 1, 0) <= 0) return false;
  Request request{};
  if (!read_all(&request, sizeof(request))) std::_Exit(0);  // fsgen went away
  if (request.op != Op::Cancel) {
    std::fprintf(stderr, "fsgen-rpc: a request (op %u) arrived during an eval\n", static_cast<unsigned>(request.op));
    std::_Exit(1);
  }
  return true;
}

// Makes c hold `full` and its last n_rows logits, with the same decode calls as LocalSession::eval
// (the same numbers as a local model), one n_batch chunk at a time: Progress after each chunk,
// and a stop there when fsgen sent Cancel. Returns false when cancelled (Cancelled was sent).
bool eval_in_chunks(Context& c, const std::vector<Token>& full, size_t n_rows, Reply& r) {
  LocalSession& session = *c.session;
  const size_t n = full.size();
  // LocalSession's own checks, before anything is decoded (so c.seq stays exact).
  if (n == 0 || n_rows == 0 || n_rows > n) throw InvalidArgumentError("eval needs 1 <= n_rows <= n tokens");
  if (n > static_cast<size_t>(session.n_ctx())) {
    throw ContextOverflowError(std::to_string(n) + " tokens do not fit in the context of " + std::to_string(session.n_ctx()));
  }
  if (n_rows > static_cast<size_t>(session.n_batch())) throw InvalidArgumentError("more output rows than the batch size");
  size_t common = 0;
  while (common < std::min(n, c.seq.size()) && c.seq[common] == full[common]) ++common;
  const size_t first_output = n - n_rows;
  const size_t n_batch = static_cast<size_t>(session.n_batch());
  const size_t begin = std::min(common, first_output);
  const size_t last_normal_start = begin + ((n - begin - 1) / n_batch) * n_batch;
  const size_t tail_start = std::min(last_normal_start, first_output);
  r.decoded = 0;
  try {
    for (size_t pos = begin; pos < tail_start; pos = std::min(tail_start, pos + n_batch)) {
      // One chunk, with an output at its end: reading it waits for the server (ggml-rpc queues
      // computations), so the progress reported is real.
      const size_t end = std::min(tail_start, pos + n_batch);
      session.eval(full.data(), end, 1);
      r.decoded += session.last_decoded_tokens();
      c.seq.assign(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(end));
      Reply progress{};
      progress.context = r.context;
      progress.a = end;
      if (cancel_requested()) {
        progress.status = Status::Cancelled;
        reply(progress);
        return false;
      }
      progress.status = Status::Progress;
      reply(progress);
    }
    session.eval(full.data(), n, n_rows);
    r.decoded += session.last_decoded_tokens();
    c.seq = full;
  } catch (...) {
    // A failed decode leaves the cache at a prefix of `full` (LocalSession drops partial batches).
    c.seq.assign(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(std::min(session.n_cached(), n)));
    throw;
  }
  return true;
}

int session(const std::map<std::string, std::string>& flags) {
  // Never outlive fsgen. Not PR_SET_PDEATHSIG: that fires when the *thread* that started this
  // helper ends (a Pair loaded on a worker thread, as fsgen serve loads its models), so a thread
  // watches the parent process instead (a stuck network call would never see the socket close).
  const pid_t parent = ::getppid();
  const long expected = std::stol(flag(flags, "parent", "0"));
  if (expected > 0 && parent != static_cast<pid_t>(expected)) return 1;  // fsgen ended before we started
  std::thread([parent] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (::getppid() != parent) std::_Exit(0);
    }
  }).detach();
  // A broken connection to the server then ends in ggml-rpc's abort with its message on stderr
  // (fsgen quotes it) rather than a silent SIGPIPE; and no debugger-driven backtrace, which would
  // only delay the exit fsgen is waiting for.
  std::signal(SIGPIPE, SIG_IGN);
  ::setenv("GGML_NO_BACKTRACE", "1", 1);
  const std::string path = flag(flags, "model", "");
  const int n_vocab = std::stoi(flag(flags, "n-vocab", "0"));
  ModelOptions options;
  options.n_gpu_layers = std::stoi(flag(flags, "n-gpu-layers", "-1"));
  options.verbose = flags.count("verbose") > 0;

  const size_t slot_floats = size_t(kMaxOutputRows) * size_t(n_vocab);
  const size_t bytes = size_t(kMaxContexts) * slot_floats * sizeof(float);
  void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, kLogitsFd, 0);
  if (map == MAP_FAILED) {
    reply_error(Status::ModelLoad, std::string("the helper cannot map the shared logits: ") + std::strerror(errno));
    return 1;
  }
  float* logits = static_cast<float*>(map);

  // Registering a server connects to it; on failure ggml-rpc aborts this process, and fsgen reads
  // the reason from our stderr. Only this model's devices are used: nothing is registered globally.
  std::vector<ggml_backend_dev_t> devices;
  std::string list = flag(flags, "rpc", "");
  for (size_t start = 0; start < list.size();) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string endpoint = list.substr(start, comma - start);
    start = comma + 1;
    ggml_backend_reg_t reg = ggml_backend_rpc_add_server(endpoint.c_str());
    if (reg == nullptr) {
      reply_error(Status::ModelLoad, "the RPC server at " + endpoint + " offers no device");
      return 1;
    }
    for (size_t i = 0; i < ggml_backend_reg_dev_count(reg); ++i) devices.push_back(ggml_backend_reg_dev_get(reg, i));
  }
  devices.push_back(nullptr);

  std::shared_ptr<const Weights> weights;
  try {
    LoadExtras extras;
    extras.devices = devices.data();
    extras.progress = report_progress;
    weights = load_weights(path, options, extras);
  } catch (const std::exception& e) {
    reply_error(Status::ModelLoad, e.what());
    return 1;
  }
  {
    Reply ready{};
    ready.status = Status::Ready;
    ready.a = weights->info.n_params;
    ready.b = weights->info.size_bytes;
    reply(ready, weights->info.description);
  }

  std::vector<Context> contexts(kMaxContexts);
  // ggml-rpc cannot abort a decode: cancelling happens between chunks (eval_in_chunks).
  CancelFlags no_cancel;
  std::vector<Token> tokens;
  for (;;) {
    Request request{};
    // fsgen closed the socket: done. No cleanup: the server frees this client's buffers when the
    // connection closes, and freeing them over the network first would only delay the exit.
    if (!read_all(&request, sizeof(request))) std::_Exit(0);
    if (request.op == Op::Cancel) continue;  // its eval had ended
    if (request.op == Op::Eval && request.n_new > 0) {
      if (request.n_new > kMaxMessageBytes / sizeof(Token)) {  // fsgen never sends one: out of step
        std::fprintf(stderr, "fsgen-rpc: an eval of %llu tokens\n", static_cast<unsigned long long>(request.n_new));
        std::_Exit(1);
      }
      tokens.resize(request.n_new);
      if (!read_all(tokens.data(), tokens.size() * sizeof(Token))) std::_Exit(0);
    }
    Reply r{};
    r.status = Status::Ok;
    r.context = request.context;
    try {
      if (request.context < 0 || request.context >= kMaxContexts) throw InvalidArgumentError("bad context id");
      Context& c = contexts[request.context];
      switch (request.op) {
        case Op::NewContext: {
          ModelOptions o = options;
          o.n_ctx = request.n_ctx;
          o.n_batch = request.n_batch;
          o.n_threads = request.n_threads;
          o.flash_attn = request.flash_attn;
          o.prompt_cache_mib = request.prompt_cache_mib;
          c.session.reset();
          c.session = std::make_unique<LocalSession>(weights, o, &no_cancel);
          c.seq.clear();
          r.n_ctx = c.session->n_ctx();
          r.n_batch = c.session->n_batch();
          break;
        }
        case Op::FreeContext:
          c.session.reset();
          c.seq.clear();
          break;
        case Op::Eval: {
          if (!c.session) throw InvalidArgumentError("no such context");
          if (request.keep > c.seq.size()) throw InvalidArgumentError("the helper lost track of the sequence");
          std::vector<Token> full(c.seq.begin(), c.seq.begin() + static_cast<std::ptrdiff_t>(request.keep));
          full.insert(full.end(), tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(request.n_new));
          const auto start = std::chrono::steady_clock::now();
          if (!eval_in_chunks(c, full, request.n_rows, r)) continue;  // cancelled: answered
          r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          float* slot = logits + size_t(request.context) * slot_floats;
          for (size_t row = 0; row < request.n_rows; ++row) {
            std::memcpy(slot + row * size_t(n_vocab), c.session->logits(row), size_t(n_vocab) * sizeof(float));
          }
          break;
        }
        default: throw InvalidArgumentError("unknown request");
      }
      reply(r);
    } catch (const InvalidArgumentError& e) {
      reply_error(Status::InvalidArgument, e.what());
    } catch (const ContextOverflowError& e) {
      reply_error(Status::ContextOverflow, e.what());
    } catch (const ModelLoadError& e) {
      reply_error(Status::ModelLoad, e.what());
    } catch (const std::exception& e) {
      reply_error(Status::Generation, e.what());
    } catch (const Cancelled&) {
      reply_error(Status::Generation, "cancelled");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || (std::strcmp(argv[1], "serve") != 0 && std::strcmp(argv[1], "session") != 0)) {
    std::fprintf(stderr, "usage: fsgen-rpc serve [--host H] [--port P] [--threads N] [--cache DIR] [--allow-remote]\n"
                         "       (fsgen-rpc session is started by fsgen itself)\n");
    return 2;
  }
  try {
    const auto flags = parse_flags(argc, argv, 2);
    return std::strcmp(argv[1], "serve") == 0 ? serve(flags) : session(flags);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fsgen-rpc: %s\n", e.what());
    return 2;
  }
}
