// The cost table: what a verify batch of each size and one System 1 step cost. Every decision
// inside a generation that can change its text (fs's guard, the draft lengths and sources of
// speculative decoding) reads a snapshot of it taken when the generation starts, never a clock:
// the same table, prompt and options give the same text whatever else the machine is doing.
// Timings measured while generating may update a measured table for the next generation.
#pragma once
#include <string>
#include <vector>

namespace fsgen {

struct CostTable {
  std::vector<double> verify;  // seconds by rows (index 0 unused; <= 0 unknown)
  double draft = -1;           // one System 1 decode step (<= 0 unknown, or no System 1)
  // "measured" (calibrated on this machine; timings refine it between generations), "builtin"
  // (builtin(): fixed) or "pinned" (given by the user: fixed).
  std::string kind = "builtin";
  // One sampled row: the sampler's distribution over the large model's vocabulary at OpenAI's
  // defaults (temperature 1, no truncation), which sampled generations pay per draft step and per
  // row System 2 judges (<= 0 unknown: priced as free).
  double sampling = -1;
  // One System 1 decode of kCatchUpRows new tokens with one output row: what System 1 pays to
  // catch up on tokens it did not write (<= 0 unknown: priced from the verifier's batches).
  double catch_up = -1;
  static constexpr int kCatchUpRows = 16;

  // 8 hex characters of a hash of the costs (not the kind): a pinned copy of a measured table
  // keeps its id; an unknown sampling or catch-up cost leaves it as it was before that cost was
  // measured.
  std::string id() const;
  // Whether timings may update it between generations.
  bool frozen() const { return kind != "measured"; }

  // The table used where nothing was measured (calibrate=False): a one-row verify of 10 ms, each
  // further row a tenth of one more (batched kernels), up to 16 rows; a System 1 step costs the
  // small model's share of the large one's parameters (small_to_large, clamped to [0.05, 1]) of
  // a one-row verify.
  static CostTable builtin(double small_to_large);
};

}  // namespace fsgen
