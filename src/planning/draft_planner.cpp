#include "fsgen/draft_planner.hpp"

#include <algorithm>
#include <cmath>

namespace fsgen {
namespace {

constexpr double kEma = 0.2;          // weight of a new cost sample
constexpr double kRoundDecay = 0.95;  // recent rounds weigh more: acceptance drifts with the text
constexpr double kPromptCarry = 4.0;  // a new prompt keeps earlier acceptance as this many tokens' worth
constexpr double kPriorWeight = 2.0;  // the prior counts as two tokens
// The least expected gain over no draft that a draft length must promise. Prose on a linear curve
// (4 rows = 2.6 one-row verifies) drafted one-token n-gram drafts priced at 1.01-1.03x, lost
// most of them, and ran 0.94-0.95x large-only with 3% more verify rows.
constexpr double kMinGain = 0.05;
// observed / calibrated beyond kDrift, or below kFaster, over 32 samples at least: drifted. A
// calibration keeps each size's fastest sample and a busy moment slows single steps a good deal,
// so only a lasting slow-down re-measures (13 s on the demo pair, before the next generation).
// Decodes lastingly faster than the calibration's fastest mean it was taken in a slow spell of
// the host (a cached one 1.5x too slow was seen here) and is cached as such: measured again.
constexpr double kDrift = 1.75;
constexpr double kFaster = 0.8;
constexpr int kDriftSamples = 32;
constexpr double kDriftWeight = 0.05;  // of a new sample in the running ratio, which starts at 1

double ema(double old, double sample) { return old > 0 ? (1 - kEma) * old + kEma * sample : sample; }

}  // namespace

DraftPlanner::DraftPlanner(double small_to_large_cost) : cost_ratio_prior_(small_to_large_cost) {
  // Short n-gram matches are often wrong; long ones are usually copies.
  const double priors[kNgramBuckets] = {0.4, 0.5, 0.6, 0.7, 0.8};
  for (int b = 0; b < kNgramBuckets; ++b) ngram_[b].prior = priors[b];
}

DraftPlanner DraftPlanner::for_generation(const CostTable& table, const SamplingOptions& sampling) {
  DraftPlanner p;
  p.calibration_ = CostCurve{table.verify, table.draft, table.sampling, table.catch_up};
  p.kind_ = table.kind;
  p.frozen_ = true;
  if (!sampling.greedy()) {
    p.sampling_ = std::max(0.0, table.sampling);
    p.model_.prior = sampled_acceptance_prior(sampling);
  }
  return p;
}

double DraftPlanner::sampled_acceptance_prior(const SamplingOptions& sampling) {
  constexpr double kGreedy = 0.7;
  // A sampled draft token is accepted with min(1, p/q): the overlap of the two models'
  // distributions at the temperature both sample at. Measured on the demo pair (3-token drafts,
  // 6 prompts, two seeds; accepted / drafted, mean): greedy 0.87, temperature 0.7 / top_p 0.9
  // 0.89, temperature 1 0.86, temperature 1.2 0.85: flattening both models keeps their overlap up
  // to temperature 1, and lowers it slowly beyond.
  if (sampling.greedy() || sampling.temperature <= 1.0f) return kGreedy;
  const double above = std::min(static_cast<double>(sampling.temperature), 3.0) - 1.0;
  return kGreedy * (1.0 - 0.25 * above);
}

CostTable DraftPlanner::table() const {
  if (kind_ != "measured") {
    if (calibration_.verify.empty()) return CostTable::builtin(cost_ratio_prior_);
    return CostTable{calibration_.verify, calibration_.draft, kind_, calibration_.sampling, calibration_.catch_up};
  }
  CostTable t;
  t.kind = kind_;
  const int rows = static_cast<int>(std::max({verify_.size(), calibration_.verify.size(), size_t(17)})) - 1;
  t.verify.assign(rows + 1, -1.0);
  for (int r = 1; r <= rows; ++r) t.verify[r] = verify_cost(r);
  t.draft = draft_cost(DraftOrigin::Model);
  t.sampling = calibration_.sampling;
  t.catch_up = calibration_.catch_up;
  return t;
}

CostTable DraftPlanner::calibrated_table() const {
  if (kind_ != "measured" || calibration_.verify.empty()) return table();
  return CostTable{calibration_.verify, calibration_.draft, kind_, calibration_.sampling, calibration_.catch_up};
}

void DraftPlanner::set_table(const CostTable& table) {
  set_calibration(CostCurve{table.verify, table.draft, table.sampling, table.catch_up});
  kind_ = table.kind;
}

void DraftPlanner::fold(const DraftPlanner& generation) {
  for (const auto& [rows, seconds] : generation.verify_log_) observe_verify(rows, seconds);
  for (double seconds : generation.draft_log_) observe_draft_step(seconds);
  model_ = generation.model_;
  for (int b = 0; b < kNgramBuckets; ++b) ngram_[b] = generation.ngram_[b];
  rounds_ += generation.rounds_;
  rejections_ += generation.rejections_;
  probes_ += generation.probes_;
}

void DraftPlanner::set_calibration(const CostCurve& curve) {
  calibration_ = curve;
  kind_ = "measured";
  scale_ = 1.0;
  scale_samples_ = 0;
}

bool DraftPlanner::drifted() const {
  return scale_samples_ >= kDriftSamples && (scale_ > kDrift || scale_ < kFaster);
}

void DraftPlanner::observe_draft_step(double seconds) {
  if (!(seconds > 0)) return;
  if (frozen_) {
    draft_log_.push_back(seconds);
    return;
  }
  if (++draft_samples_ == 1) return;  // cold
  draft_cost_ = ema(draft_cost_, seconds);
}

void DraftPlanner::observe_verify(int rows, double seconds) {
  if (rows < 1 || !(seconds > 0)) return;
  if (frozen_) {
    verify_log_.emplace_back(rows, seconds);
    return;
  }
  if (rows >= static_cast<int>(verify_.size())) {
    verify_.resize(rows + 1, -1.0);
    samples_.resize(rows + 1, 0);
  }
  const bool calibrated = rows < static_cast<int>(calibration_.verify.size()) && calibration_.verify[rows] > 0;
  if (++samples_[rows] == 1) {
    // Cold: the first sample of all (thread pools waking up, caches), and a calibrated size's
    // first. Elsewhere a size's first sample stands in until its second replaces it: a size beyond
    // the calibration (a long n-gram draft) is otherwise only extrapolated, and would be tried
    // again and again at a price it never has.
    if (!verify_seen_ || calibrated) {
      verify_seen_ = true;
      return;
    }
    verify_[rows] = seconds;
    return;
  }
  verify_[rows] = samples_[rows] == 2 ? seconds : ema(verify_[rows], seconds);
  if (calibrated) {
    const double ratio = seconds / calibration_.verify[rows];
    scale_ = (1 - kDriftWeight) * scale_ + kDriftWeight * ratio;
    ++scale_samples_;
  }
}

int DraftPlanner::bucket(int match) {
  if (match <= 1) return 0;
  if (match <= 3) return match - 1;
  return match < 8 ? 3 : 4;
}

DraftPlanner::Acceptance& DraftPlanner::acceptance_of(DraftOrigin origin, int match) {
  return origin == DraftOrigin::Ngram ? ngram_[bucket(match)] : model_;
}
const DraftPlanner::Acceptance& DraftPlanner::acceptance_of(DraftOrigin origin, int match) const {
  return origin == DraftOrigin::Ngram ? ngram_[bucket(match)] : model_;
}

void DraftPlanner::observe_round(DraftOrigin origin, int judged, int accepted, int match) {
  if (judged <= 0) return;
  Acceptance& a = acceptance_of(origin, match);
  const bool rejected = accepted < judged;
  a.accepted = a.accepted * kRoundDecay + accepted;
  a.rejected = a.rejected * kRoundDecay + (rejected ? 1 : 0);
  ++rounds_;
  rejections_ += rejected;
}

void DraftPlanner::begin_prompt() {
  auto carry = [](Acceptance& a) {
    const double total = a.accepted + a.rejected;
    const double keep = total > kPromptCarry ? kPromptCarry / total : 1.0;
    a.accepted *= keep;
    a.rejected *= keep;
  };
  carry(model_);
  for (auto& a : ngram_) carry(a);
}

double DraftPlanner::acceptance(DraftOrigin origin, int match) const {
  // Per-token acceptance of a truncated geometric: accepted / (accepted + rejections).
  const Acceptance& a = acceptance_of(origin, match);
  return (a.accepted + kPriorWeight * a.prior) / (a.accepted + a.rejected + kPriorWeight);
}

double DraftPlanner::verify_cost(int rows) const {
  auto known = [this](int r) -> double {
    if (r < static_cast<int>(verify_.size()) && verify_[r] > 0) return verify_[r];
    if (r < static_cast<int>(calibration_.verify.size()) && calibration_.verify[r] > 0) {
      return calibration_.verify[r] * scale_;
    }
    return -1;
  };
  if (rows < 1) return -1;
  const double exact = known(rows);
  if (exact > 0) return exact;
  const int top = static_cast<int>(std::max(verify_.size(), calibration_.verify.size()));
  int below = 0, above = 0;
  for (int r = rows - 1; r >= 1 && !below; --r)
    if (known(r) > 0) below = r;
  for (int r = rows + 1; r < top && !above; ++r)
    if (known(r) > 0) above = r;
  if (!below) return -1;
  const double base = known(below);
  if (above) return base + (known(above) - base) * (rows - below) / double(above - below);
  // Beyond what was measured: a fixed cost plus a cost per row. The per-row part is the slope
  // over the upper half of the sizes known (from the largest down to the one nearest half of it:
  // neighbouring sizes are too noisy: a calibration's 16 rows can come out cheaper than its 12,
  // and long drafts would look free), capped at 12% of a one-row verify so that an untried length
  // is probed once rather than never; its first sample then prices it. Over a network a call's
  // fixed part is a round trip and the slope stays the remote compute per row: longer drafts pay
  // there (12% of a one-row call would price each row like a fraction of a round trip).
  const double single = known(1) > 0 ? known(1) : base;
  const double cap = 0.12 * single;
  int lower = 0;
  for (int r = below / 2; r >= 1 && !lower; --r)
    if (known(r) > 0) lower = r;
  for (int r = below - 1; r > below / 2 && !lower; --r)
    if (known(r) > 0) lower = r;
  const double slope = lower ? std::clamp((base - known(lower)) / double(below - lower), 0.0, cap) : cap;
  return base + slope * (rows - below);
}

double DraftPlanner::draft_cost(DraftOrigin origin) const {
  if (origin == DraftOrigin::Ngram) return 0.0;
  if (draft_cost_ > 0) return draft_cost_;
  if (calibration_.draft > 0) return calibration_.draft * scale_;
  const double single = verify_cost(1);
  return single > 0 ? cost_ratio_prior_ * single : -1;
}

double DraftPlanner::round_cost(DraftOrigin origin, int length, double judged) const {
  const double verify = verify_cost(length + 1);
  if (verify <= 0) return -1;
  if (origin == DraftOrigin::Ngram) return verify + judged * sampling_;
  const double step = std::max(0.0, draft_cost(origin)) + sampling_;
  return (length + extra_draft_steps_) * step + verify + judged * sampling_;
}

double DraftPlanner::expected_rate(DraftOrigin origin, int length, int match) const {
  const double a = std::min(acceptance(origin, match), 0.999);
  double expected = 1.0, power = 1.0;  // tokens per round: 1 + a + ... + a^length
  for (int i = 0; i < length; ++i) expected += (power *= a);
  // System 2 samples a row per token it writes (the accepted drafts' and its own).
  const double cost = round_cost(origin, length, expected);
  return cost > 0 ? expected / cost : -1;
}

int DraftPlanner::fastest_length(DraftOrigin origin, int max_length, double acceptance, double* rate) const {
  *rate = 0;
  if (verify_cost(1) <= 0 || draft_cost(origin) < 0) return 0;
  const double a = std::min(acceptance, 0.999);
  int best = 0;
  double expected = 1.0, power = 1.0;
  for (int k = 1; k <= max_length; ++k) {
    expected += (power *= a);
    const double cost = round_cost(origin, k, expected);
    if (cost <= 0) continue;
    if (expected / cost > *rate) {
      *rate = expected / cost;
      best = k;
    }
  }
  return best;
}

int DraftPlanner::best_length(DraftOrigin origin, int max_length, double acceptance) const {
  double rate = 0;
  const int best = fastest_length(origin, max_length, acceptance, &rate);
  // A draft must promise a clear gain over no draft: the acceptance it is priced at is an
  // estimate (a prior and a few rounds), and on a CPU a rejected row costs most of a step.
  return best > 0 && rate >= (1.0 + kMinGain) / (verify_cost(1) + sampling_) ? best : 0;
}

double DraftPlanner::lossless_token_cost(double acceptance, int max_length) const {
  const double single = verify_cost(1), draft = draft_cost(DraftOrigin::Model);
  if (single <= 0) return -1;
  if (draft <= 0) return single + sampling_;
  const double a = std::clamp(acceptance, 0.0, 0.999);
  double best = single + sampling_, expected = 1.0, power = 1.0;
  for (int k = 1; k <= max_length; ++k) {
    expected += (power *= a);
    const double cost = round_cost(DraftOrigin::Model, k, expected);
    if (cost > 0) best = std::min(best, cost / expected);
  }
  return best;
}

double DraftPlanner::free_draft_token_cost(int max_length) const {
  double best = verify_cost(1);
  if (best <= 0) return -1;
  for (int k = 1; k <= max_length; ++k) {
    const double verify = verify_cost(k + 1);
    if (verify > 0) best = std::min(best, verify / (k + 1));
  }
  return best + sampling_;
}

int DraftPlanner::choose(DraftOrigin origin, int max_length, int match, int lag, int horizon) {
  probing_ = false;
  if (max_length <= 0 || verify_cost(1) <= 0) return 0;  // first measure a plain step
  Probe& probe = probe_of(origin);
  const int best = best_length(origin, max_length, acceptance(origin, match));
  if (best > 0 && repays_catch_up(origin, best, match, lag, horizon)) {
    probe = Probe{};
    return best;
  }
  // No length pays now. Probe now and then, less often each time: acceptance changes with the
  // text, costs with the machine's load and the context; never switch drafting off for good.
  if (probe.idle < probe.interval) ++probe.idle;
  if (probe.idle < probe.interval) return 0;
  // A short probe: one or two judged tokens teach the acceptance as well as a long draft, and a
  // long one rejected at its first token costs its whole batch (on a CPU nearly a step per row).
  // Of the lengths that could pay at full acceptance, the probe takes the fastest at the
  // acceptance estimated now (low, or it would not be a probe): one token on a CPU, where each
  // rejected row costs most of a step; two where a row costs little.
  const int hopeful = best_length(origin, std::min(max_length, kMaxProbeLength), 1.0);  // could pay
  double rate = 0;
  const int likeliest = hopeful > 0 ? fastest_length(origin, hopeful, acceptance(origin, match), &rate) : 0;
  const int length = likeliest > 0 ? likeliest : 1;
  if (horizon >= 0) {
    // A probe costs System 1's catch-up on everything written since it last drafted (on a CPU
    // where drafting cannot pay that is a fifth of a generation), a draft and a longer verify.
    // It bets that the acceptance is as high as a well-matched pair's: make it only where drafting
    // at that acceptance over the rest of this generation would repay its cost. Priced at full
    // acceptance instead, a 100-token catch-up on a linear curve looked repaid by 2-token drafts
    // and cost 9% of the generation (5 of 6 drafts accepted).
    const double plain = verify_cost(1) + sampling_;
    double hoped = 0;  // tokens per second at that acceptance, the best length up to the hopeful one
    fastest_length(origin, std::max(hopeful, 1), kProbeHope, &hoped);
    const double saving = hoped > 0 ? horizon * std::max(0.0, plain - 1.0 / hoped) : 0.0;
    const double cost = catch_up_cost(lag) + std::max(0.0, round_cost(origin, length, length + 1) - plain);
    if (saving < cost) return 0;
  }
  probe.idle = 0;
  probe.interval = std::min(probe.interval * 2, kMaxProbeInterval);
  ++probes_;
  probing_ = true;
  return length;
}

bool DraftPlanner::repays_catch_up(DraftOrigin origin, int length, int match, int lag, int horizon) const {
  if (lag <= 0 || horizon < 0) return true;
  // System 1 left behind (it did not draft for a while) reads what it missed before it drafts:
  // drafting again pays only where the rounds left in this generation save more than that.
  const double rate = expected_rate(origin, length, match);
  const double plain = verify_cost(1) + sampling_;
  if (!(rate > 0) || !(plain > 0)) return true;
  return horizon * std::max(0.0, plain - 1.0 / rate) >= catch_up_cost(lag);
}

double DraftPlanner::catch_up_cost(int tokens) const {
  if (tokens <= 0) return 0;
  const double single = verify_cost(1), draft = draft_cost(DraftOrigin::Model);
  if (draft <= 0) return 0;
  const double batch = calibration_.catch_up;
  constexpr int kRows = CostTable::kCatchUpRows;
  if (batch > draft) {
    // Measured: a step for the first token, then each further one at the batch's pace.
    return draft + (tokens - 1) * (batch - draft) / (kRows - 1);
  }
  if (single <= 0) return 0;
  // Not measured: a batch costs System 1 what it costs the verifier, scaled by their one-token costs; the
  // verifier's largest measured or calibrated batch gives the per-token cost of a long one.
  const int rows = static_cast<int>(std::max(verify_.size(), calibration_.verify.size())) - 1;
  const double largest = rows > 1 ? verify_cost(rows) : -1;
  const double per_token = largest > 0 ? std::min(single, largest / rows) : single;
  return tokens * per_token * draft / single;
}

double DraftPlanner::system1_cost(int tokens) const {
  if (tokens <= 0) return 0;
  const double step = std::max(0.0, draft_cost(DraftOrigin::Model));
  return (tokens == 1 ? step : std::max(step, catch_up_cost(tokens))) + sampling_;
}

double DraftPlanner::confidence_cutoff(int length) const {
  constexpr double kUnknown = 0.3, kLowest = 0.02, kHighest = 0.9;
  const double single = verify_cost(1), last = verify_cost(length + 1), draft = draft_cost(DraftOrigin::Model);
  if (length < 1 || single <= 0 || last <= 0 || draft < 0) return kUnknown;
  // Per draft token on average over the round: curves with batched kernels are not monotone. A
  // sampled token also costs its draft step's and its verify row's sampling.
  const double per_token = draft + 2 * sampling_ + std::max(0.0, last - single) / length;
  return std::clamp(per_token / (single + sampling_), kLowest, kHighest);
}

CostCurve DraftPlanner::measured() const {
  CostCurve c;
  c.verify.assign(verify_.size(), -1.0);
  for (size_t r = 1; r < verify_.size(); ++r) c.verify[r] = verify_[r];
  c.draft = draft_cost_;
  return c;
}

}  // namespace fsgen
