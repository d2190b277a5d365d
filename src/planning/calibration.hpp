// Measuring what a verify batch of each size costs on this machine (and a drafter's step), so
// the draft planner starts from the machine's real cost curve instead of learning it by trial.
#pragma once
#include <vector>

#include "fsgen/draft_planner.hpp"
#include "fsgen/model.hpp"
#include "session.hpp"

namespace fsgen {

// The batch sizes calibrated (a draft of k tokens is verified in k + 1 rows).
const std::vector<int>& calibrated_rows();

// Tokens to calibrate verify costs after (text of typical length, from the model's tokenizer).
std::vector<Token> calibration_context(const Model& model);

// Decodes `context` once, then batches of each calibrated size (up to max_rows) after it,
// `repeats` times each in turn after one warm-up round; a size's cost is its fastest. drafter,
// if given, is timed the same way on one-token steps and on a catch-up batch
// (CostTable::kCatchUpRows tokens, one output row). Leaves both caches holding `context`.
CostCurve measure_costs(Session& verifier, Session* drafter, const std::vector<Token>& context, int max_rows,
                        int repeats = 3);

}  // namespace fsgen
