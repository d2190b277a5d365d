// Endpoints of llama.cpp RPC servers ("host:port"), and the probe that checks one answers before
// any ggml-rpc code talks to it (ggml-rpc aborts the process when a connect or handshake fails).
#pragma once
#include <string>

namespace fsgen::rpc {

struct Endpoint {
  std::string host;
  int port = 0;
  std::string text() const { return host + ":" + std::to_string(port); }
};

// "host:port" as ggml-rpc reads it (the first ':' splits); InvalidArgumentError otherwise.
Endpoint parse_endpoint(const std::string& text);

// True for an IPv4 address in 127.0.0.0/8 (ggml's server binds IPv4 literals only).
bool is_loopback(const std::string& host);

// Connects with a timeout and exchanges the RPC hello; throws ModelLoadError naming the endpoint
// and the cause (refused, unreachable, no answer, not an RPC server, protocol version mismatch).
void probe(const Endpoint& endpoint, double timeout_seconds);

}  // namespace fsgen::rpc
