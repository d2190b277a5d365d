#include "planning/calibration.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <string>
#include <thread>

#include "sampling.hpp"

namespace fsgen {
namespace {

// A size's cost is its fastest sample: a busy machine only ever adds time (another process, a
// noisy neighbour on a shared host), and a calibration is cached for later runs.
double fastest(const std::vector<double>& v) { return v.empty() ? -1 : *std::min_element(v.begin(), v.end()); }

// Times one decode of `rows` new tokens after the context (each with an output row). The filler
// token alternates, so that no batch repeats the cached one (eval would then skip the decode).
// output_rows: 0 for one per token (a verify batch), else that many (a catch-up reads one).
double time_batch(Session& session, std::vector<Token>& seq, size_t context_size, int rows, Token (&fillers)[2],
                  int& turn, int output_rows = 0) {
  seq.resize(context_size);
  const Token filler = fillers[turn++ % 2];
  for (int i = 0; i < rows; ++i) seq.push_back(filler);
  session.eval(seq, static_cast<size_t>(output_rows > 0 ? output_rows : rows));
  return session.last_decode_seconds();
}

constexpr int kDraftSteps = 3;

// One sampled row at OpenAI's defaults (temperature 1, no truncation: a pass over the whole
// vocabulary) on the verifier's last logits, and a draw from it; the fastest of a few.
double time_sampling(Session& verifier, int repeats) {
  Sampler sampler(SamplingOptions::untruncated(1.0f));
  Candidates candidates;
  std::vector<double> samples;
  for (int i = 0; i <= repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    sampler.distribution(verifier.last_logits(), verifier.n_vocab(), candidates);
    sampler.draw(candidates);
    if (i > 0) samples.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return fastest(samples);
}

// Times each size `repeats` times in turn after one warm-up round; a size's cost is its fastest.
CostCurve measure(Session& verifier, Session* drafter, const std::vector<Token>& context, const std::vector<int>& rows,
                  int repeats) {
  CostCurve curve;
  curve.verify.assign(rows.back() + 1, -1.0);
  std::vector<std::vector<double>> samples(rows.back() + 1);
  std::vector<double> draft_samples, catch_up_samples;
  std::vector<Token> seq(context);
  Token fillers[2] = {context.back(), context.back() == 0 ? Token(1) : Token(0)};
  for (Token t : context)
    if (t != fillers[0]) fillers[1] = t;
  int turn = 0, draft_turn = 0;
  verifier.eval(seq);
  if (drafter != nullptr) drafter->eval(seq);
  // Sizes interleaved, so a change in the machine's load spreads over all of them.
  for (int round = 0; round <= repeats; ++round) {
    for (int r : rows) {
      const double seconds = time_batch(verifier, seq, context.size(), r, fillers, turn);
      if (round > 0) samples[r].push_back(seconds);  // round 0 warms up
    }
    if (drafter != nullptr) {
      // System 1 writes tokens in a row (fs's steps, a draft's): timed so, not only as the first
      // step after the large model's batch has had the caches.
      seq.resize(context.size());
      for (int step = 0; step < kDraftSteps; ++step) {
        seq.push_back(fillers[draft_turn++ % 2]);
        drafter->eval(seq);
        if (round > 0) draft_samples.push_back(drafter->last_decode_seconds());
      }
      // And catches up on what System 2 wrote, in one batch: measured, since the verifier's batch
      // scaled by the step ratio puts a short catch-up below one step of System 1's.
      // (Where the context has room for the largest verify batch: it has for this one then.)
      if (rows.back() >= CostTable::kCatchUpRows) {
        const double catch_up =
            time_batch(*drafter, seq, context.size(), CostTable::kCatchUpRows, fillers, draft_turn, 1);
        if (round > 0) catch_up_samples.push_back(catch_up);
      }
    }
  }
  for (int r : rows) curve.verify[r] = fastest(samples[r]);
  curve.draft = drafter != nullptr ? fastest(draft_samples) : -1;
  curve.catch_up = drafter != nullptr ? fastest(catch_up_samples) : -1;
  seq.resize(context.size());
  verifier.eval(seq);
  curve.sampling = time_sampling(verifier, repeats);
  if (drafter != nullptr) drafter->eval(seq);
  return curve;
}

}  // namespace

const std::vector<int>& calibrated_rows() {
  static const std::vector<int> rows = {1, 2, 3, 4, 6, 8, 12, 16};
  return rows;
}

CostCurve measure_costs(Session& verifier, Session* drafter, const std::vector<Token>& context, int max_rows,
                        int repeats) {
  CostCurve curve;
  std::vector<int> rows;
  for (int r : calibrated_rows())
    if (r <= max_rows) rows.push_back(r);
  if (context.empty() || rows.empty()) return curve;
  // The context as long as a typical generation's (at most 256 tokens), leaving room in both
  // contexts for the largest batch.
  int room = verifier.n_ctx();
  if (drafter != nullptr) room = std::min(room, drafter->n_ctx());
  while (!rows.empty() && rows.back() >= room) rows.pop_back();
  if (rows.empty()) return curve;
  const size_t context_size = std::max<size_t>(1, std::min<size_t>({context.size(), 256, size_t(room - rows.back())}));
  const std::vector<Token> prefix(context.begin(), context.begin() + context_size);
  // On a thread of its own, as generations run: ggml's OpenMP thread team belongs to the thread
  // that decodes, and a team left on the caller's thread (Python's main thread, which never exits)
  // slowed every later generation in the process by about a third on a 2-core machine.
  std::exception_ptr error;
  std::thread worker([&] {
    try {
      curve = measure(verifier, drafter, prefix, rows, repeats);
    } catch (...) {
      error = std::current_exception();
    }
  });
  worker.join();
  if (error) std::rethrow_exception(error);
  return curve;
}


std::vector<Token> calibration_context(const Model& model) {
  // About 200 tokens of ordinary code and prose: the context a verify batch typically sees.
  std::string text;
  for (int i = 0; i < 6; ++i) {
    text += "def add_numbers(values, start=0):\n    \"\"\"Return the sum of the values.\"\"\"\n"
            "    total = start\n    for value in values:\n        total += value\n    return total\n\n"
            "The quick brown fox jumps over the lazy dog. ";
  }
  return model.tokenize(text, false);
}

}  // namespace fsgen
