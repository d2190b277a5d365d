// What a model on RPC servers (ModelOptions::rpc) has cost so far, as seen from this process.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fsgen {

class Model;

struct RemoteStats {
  std::vector<std::string> endpoints;
  bool lost = false;              // a call failed; reload (Pair::reload_large) to use it again
  std::uint64_t evals = 0;        // decode requests answered by the helper process
  std::uint64_t rows = 0;         // logits rows they returned
  double round_trip_seconds = 0;  // this process: request sent to answer read
  double helper_seconds = 0;      // the helper: its llama_decode calls (network included)
  // What the helper process adds per call (socket messages, logits copies): the difference.
  double overhead_per_eval() const { return evals ? (round_trip_seconds - helper_seconds) / double(evals) : 0.0; }
};

// Empty for a model in this process.
std::optional<RemoteStats> remote_stats(const Model& model);

}  // namespace fsgen
