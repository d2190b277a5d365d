// The draft planner: how long a draft to verify in one round, from what verifying and drafting
// cost on this machine and how often this prompt's drafts are accepted.
//
// Costs: the verify cost of every batch size that matters (a calibration measures them up front,
// observations between generations keep them current), the cost of one System 1 draft step (an
// n-gram draft costs nothing). Acceptance: per source (System 1's drafts; n-gram drafts by match
// length), per generation (a generation's planner starts from fixed priors). A round's length maximises the
// expected tokens per second; where no length pays, the planner still probes now and then, less
// often each time a probe fails, so a change in costs or acceptance is noticed at a bounded cost.
//
// A pair or model owns one planner across calls, and each generation decides with its own,
// built by for_generation() from a snapshot of the cost table (cost_table.hpp): it prices only
// from that table and this generation's acceptance, and keeps its timings apart; fold() hands
// them to the owner afterwards, for the next generation's table.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fsgen/cost_table.hpp"
#include "fsgen/options.hpp"
#include "fsgen/types.hpp"

namespace fsgen {

// Who proposed a draft token: DraftSource's None, Model or Ngram (the name the planner's API uses).
using DraftOrigin = DraftSource;

// Verify costs by batch size (seconds; index = rows, index 0 unused, <= 0 unknown) and the cost of
// one System 1 decode step (<= 0 unknown, or no System 1).
struct CostCurve {
  std::vector<double> verify;
  double draft = -1;
  double sampling = -1;  // one sampled row (CostTable::sampling)
  double catch_up = -1;  // System 1's catch-up batch (CostTable::catch_up)
};

class DraftPlanner {
 public:
  // small_to_large_cost: the prior for a draft step's cost relative to a one-row verify, used
  // until a draft step has been measured.
  explicit DraftPlanner(double small_to_large_cost = 0.35);

  // A generation's planner: prices from `table` alone (timings are kept for fold(), never read),
  // acceptance from the fixed priors. A sampled generation (sampling.temperature > 0) prices each
  // sampled row at the table's sampling cost and starts System 1's drafts from the acceptance
  // prior of its temperature (sampled_acceptance_prior).
  static DraftPlanner for_generation(const CostTable& table, const SamplingOptions& sampling = {});
  // The prior per-token acceptance of System 1's drafts at this sampling (greedy: 0.7; lower
  // above temperature 1).
  static double sampled_acceptance_prior(const SamplingOptions& sampling);
  // The table the next generation starts from: a measured table as observations have refined it;
  // a pinned one as given; else the built-in table (CostTable::builtin, from the prior).
  CostTable table() const;
  // The table as last measured up front (the calibration, which timings do not move; table()
  // where none ran): it prices a result's decodes (Stats::priced_seconds) alike generation after
  // generation.
  CostTable calibrated_table() const;
  // A measured table calibrates (as set_calibration); a pinned or built-in one is used as given.
  void set_table(const CostTable& table);
  // After a generation: its timings (unless the table is frozen they reach the next table), its
  // acceptance (for the figures) and its counts.
  void fold(const DraftPlanner& generation);

  // A calibration: costs measured up front. Observations then track drift (a common scale).
  void set_calibration(const CostCurve& curve);
  const CostCurve& calibration() const { return calibration_; }
  // True once observations disagree with the calibration by more than half (re-measure it).
  bool drifted() const;

  // The first sample of each kind is a cold one (caches, thread pools waking up) and is dropped,
  // as is a calibrated size's first; an uncalibrated size's first stands in until a second comes.
  void observe_draft_step(double seconds);
  void observe_verify(int rows, double seconds);
  // A round: `judged` draft tokens that System 2 judged, `accepted` of them agreed with.
  // match: the n-gram match length the draft came from (0 for System 1's drafts).
  void observe_round(DraftOrigin origin, int judged, int accepted, int match = 0);
  // A new prompt: acceptance seen so far becomes a weak prior.
  void begin_prompt();

  // The draft length to use this round (0: no draft), at most max_length. lag: tokens System 1
  // must catch up on before it can draft (it is left behind while it does not draft); horizon:
  // tokens this generation may still write (< 0: unknown). A probe is made only where drafting at
  // a well-matched pair's acceptance (kProbeHope) over the horizon would repay its cost, System
  // 1's catch-up included.
  int choose(DraftOrigin origin, int max_length, int match = 0, int lag = 0, int horizon = -1);
  // Whether the last choose() returned a probe (a length the estimates say does not pay).
  bool probing() const { return probing_; }
  // System 1 decodes a round takes beyond one per draft token (SLEM writes one token past what it
  // proposes, since the end of its text is usually cut); the drafter sets it before it offers.
  void set_extra_draft_steps(int steps) { extra_draft_steps_ = std::max(0, steps); }
  // Estimated cost of System 1 catching up on `tokens` in one batch.
  double catch_up_cost(int tokens) const;
  // What one System 1 decode of `tokens` new tokens costs (a step, or a catch-up batch), and one
  // of the large model (priced by rows), each with the one row it samples in a sampled
  // generation: the modelled costs fs's guard weighs.
  double system1_cost(int tokens) const;
  double system2_cost(int tokens) const {
    return tokens > 0 ? std::max(0.0, verify_cost(tokens)) + sampling_ : 0.0;
  }
  // The sampler's cost of one row in this generation (0: greedy, or the table does not know it).
  double sampling_cost() const { return sampling_; }
  // Expected tokens per second of a round with this draft (length 0: verify one row).
  double expected_rate(DraftOrigin origin, int length, int match = 0) const;
  // The length with the best expected tokens/s at a given per-token acceptance (0: none promises
  // at least 5% more tokens/s than no draft).
  int best_length(DraftOrigin origin, int max_length, double acceptance) const;
  // The length with the best expected tokens/s at that acceptance, whatever the gain (0: the
  // costs are unknown); `rate` gets its tokens per second.
  int fastest_length(DraftOrigin origin, int max_length, double acceptance, double* rate) const;
  // What a token costs written the faster lossless way: the large model alone, or speculative
  // with System 1's drafts of the best length at per-token acceptance `acceptance` (<= 0: the
  // costs are unknown). fs's guard weighs fs against it.
  double lossless_token_cost(double acceptance, int max_length = 8) const;
  // The least a token could cost speculative: free drafts (n-gram), all accepted (<= 0: unknown).
  double free_draft_token_cost(int max_length = 15) const;

  // The top-1 probability below which System 1 should end a draft of `length` tokens: a further
  // token must be likelier to be accepted than what it costs (a draft step and its verify row)
  // measured in one-row verifies. Low where calls are dear (a network round trip), high where
  // rows cost nearly as much as a call (a CPU without batched kernels).
  double confidence_cutoff(int length) const;

  double acceptance(DraftOrigin origin, int match = 0) const;
  double verify_cost(int rows) const;  // measured, else calibrated, else interpolated (<= 0: unknown)
  double draft_cost(DraftOrigin origin) const;
  // Measured verify costs (seconds by rows; <= 0 not measured) and the draft step's cost.
  CostCurve measured() const;
  int rounds() const { return rounds_; }
  int rejections() const { return rejections_; }
  int probes() const { return probes_; }

 private:
  struct Acceptance {
    double accepted = 0, rejected = 0;
    double prior = 0.7;
  };
  struct Probe {
    int idle = 0, interval = kFirstProbeInterval;
  };
  static constexpr int kFirstProbeInterval = 16;
  static constexpr int kMaxProbeInterval = 512;
  static constexpr int kMaxProbeLength = 2;
  // The acceptance a probe bets on: about a well-matched pair's (the demo pair's greedy drafts:
  // 0.87 accepted per drafted token).
  static constexpr double kProbeHope = 0.9;
  static constexpr int kNgramBuckets = 5;

  Acceptance& acceptance_of(DraftOrigin origin, int match);
  const Acceptance& acceptance_of(DraftOrigin origin, int match) const;
  Probe& probe_of(DraftOrigin origin) { return origin == DraftOrigin::Ngram ? probe_ngram_ : probe_model_; }
  static int bucket(int match);

  // Whether drafting `length` tokens a round at the estimated acceptance saves, over the `horizon`
  // tokens left, more than System 1's catch-up on `lag` tokens costs (true where either is unknown).
  bool repays_catch_up(DraftOrigin origin, int length, int match, int lag, int horizon) const;
  // A round of `length` drafts from `origin` and its verify: the decodes and, sampled, the
  // sampler's rows (each draft step, and the `judged` rows System 2 samples).
  double round_cost(DraftOrigin origin, int length, double judged) const;

  double cost_ratio_prior_;
  double sampling_ = 0;  // seconds per sampled row in this generation (0: greedy)
  int extra_draft_steps_ = 0;
  std::string kind_ = "builtin";  // of the table: "builtin" until calibrated or given one
  bool frozen_ = false;           // a generation's planner: prices from calibration_ alone
  std::vector<std::pair<int, double>> verify_log_;  // a frozen planner's timings, for fold()
  std::vector<double> draft_log_;
  CostCurve calibration_;
  double scale_ = 1.0;     // observed / calibrated verify cost (load, context length, ...)
  int scale_samples_ = 0;
  double draft_cost_ = -1;
  int draft_samples_ = 0;
  std::vector<double> verify_;  // by rows: EMA of warm samples (< 0 none)
  std::vector<int> samples_;    // by rows: samples seen (the first is dropped)
  Acceptance model_;
  Acceptance ngram_[kNgramBuckets];
  Probe probe_model_, probe_ngram_;
  int rounds_ = 0, rejections_ = 0, probes_ = 0;
  bool verify_seen_ = false;  // a verify sample has come (the first of all is cold)
  bool probing_ = false;
};

}  // namespace fsgen
