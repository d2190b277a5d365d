#include "rpc/endpoint.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "fsgen/error.hpp"
#include "ggml-rpc.h"

namespace fsgen::rpc {
namespace {

// The hello of the pinned protocol: command byte 14, the request size, 24 bytes of connection
// capabilities (zero: plain TCP); the answer is its size, then major, minor, patch, padding and
// the server's capabilities.
constexpr uint8_t kHelloCommand = 14;
constexpr size_t kCapsSize = 24;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { if (fd_ >= 0) ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

using Clock = std::chrono::steady_clock;

int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g s", s);
  return buf;
}

[[noreturn]] void fail(const Endpoint& e, const std::string& cause) {
  throw ModelLoadError("the RPC server at " + e.text() + " cannot be used: " + cause);
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, ms_left(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

Endpoint parse_endpoint(const std::string& text) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= text.size()) {
    throw InvalidArgumentError("an RPC endpoint is \"host:port\", got \"" + text + "\"");
  }
  Endpoint e;
  e.host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
    throw InvalidArgumentError("the port of RPC endpoint \"" + text + "\" is not a number");
  }
  e.port = std::stoi(port);
  if (e.port < 1 || e.port > 65535) throw InvalidArgumentError("the port of \"" + text + "\" is not in 1..65535");
  return e;
}

bool is_loopback(const std::string& host) {
  in_addr addr{};
  if (::inet_pton(AF_INET, host.c_str(), &addr) != 1) return false;
  return (ntohl(addr.s_addr) >> 24) == 127;
}

void probe(const Endpoint& e, double timeout_seconds) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout_seconds));
  addrinfo hints{};
  hints.ai_family = AF_INET;  // as ggml-rpc (gethostbyname)
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int gai = ::getaddrinfo(e.host.c_str(), std::to_string(e.port).c_str(), &hints, &found);
  if (gai != 0 || found == nullptr) fail(e, std::string("cannot resolve the host (") + gai_strerror(gai) + ")");
  sockaddr_in addr{};
  std::memcpy(&addr, found->ai_addr, sizeof(addr));
  ::freeaddrinfo(found);

  Fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) fail(e, std::string("socket() failed: ") + std::strerror(errno));
  ::fcntl(sock.get(), F_SETFL, ::fcntl(sock.get(), F_GETFL) | O_NONBLOCK);
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) fail(e, std::string("connect failed: ") + std::strerror(errno));
    if (!wait_for(sock.get(), POLLOUT, deadline)) {
      fail(e, "no connection within " + seconds_text(timeout_seconds) + " (host down or filtered?)");
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) fail(e, std::string("connect failed: ") + std::strerror(err));
  }

  uint8_t request[1 + 8 + kCapsSize] = {};
  request[0] = kHelloCommand;
  const uint64_t size = kCapsSize;
  std::memcpy(request + 1, &size, sizeof(size));
  size_t sent = 0;
  while (sent < sizeof(request)) {
    if (!wait_for(sock.get(), POLLOUT, deadline)) fail(e, "the hello could not be sent in time");
    const ssize_t n = ::send(sock.get(), request + sent, sizeof(request) - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) fail(e, std::string("send failed: ") + std::strerror(errno));
    if (n > 0) sent += static_cast<size_t>(n);
  }
  uint8_t answer[8 + 4 + kCapsSize];
  size_t got = 0;
  while (got < sizeof(answer)) {
    if (!wait_for(sock.get(), POLLIN, deadline)) {
      fail(e, "no answer to the RPC hello within " + seconds_text(timeout_seconds) +
                  " (the server serves one client at a time: is another client connected?)");
    }
    const ssize_t n = ::recv(sock.get(), answer + got, sizeof(answer) - got, 0);
    if (n == 0) fail(e, "the server closed the connection during the hello (not an RPC server, or another version)");
    if (n < 0 && errno != EAGAIN && errno != EINTR) fail(e, std::string("recv failed: ") + std::strerror(errno));
    if (n > 0) got += static_cast<size_t>(n);
  }
  uint64_t answer_size = 0;
  std::memcpy(&answer_size, answer, sizeof(answer_size));
  if (answer_size != 4 + kCapsSize) fail(e, "the answer to the hello is not the RPC protocol's");
  const int major = answer[8], minor = answer[9], patch = answer[10];
  if (major != RPC_PROTO_MAJOR_VERSION || minor > RPC_PROTO_MINOR_VERSION) {
    fail(e, "the server speaks RPC protocol " + std::to_string(major) + "." + std::to_string(minor) + "." +
                std::to_string(patch) + ", this fsgen " + std::to_string(RPC_PROTO_MAJOR_VERSION) + "." +
                std::to_string(RPC_PROTO_MINOR_VERSION) + " (run the same fsgen/llama.cpp version on both)");
  }
}

}  // namespace fsgen::rpc
