// The plan of one call: which decoding loop runs, whether fs's guard runs, and what must be
// ready first. The one place these rules live: Pair and Model build from it, and Python asks it
// before a call (fsgen._core.plan_for) instead of keeping a copy of the rules.
#pragma once
#include "fsgen/options.hpp"
#include "fsgen/params.hpp"

namespace fsgen {

// The decoding loop a call runs: one model alone, draft-and-verify (System 1's or n-gram drafts),
// or fast and slow (System 1 writes, System 2 consulted by a router; contrastive and proxy as
// methods are its "always" router).
enum class StrategyKind { Single, Speculative, FastSlow };
const char* to_string(StrategyKind kind);  // "single", "speculative", "fast_slow"

struct CallPlan {
  StrategyKind strategy = StrategyKind::Single;
  // fs hands the writing over to speculative verification while it runs behind the large model
  // alone (fs_guard.hpp): fs with System 2 = the large model, guard=True, and a router the guard
  // applies to (the parameter table's scope of `guard`).
  bool guarded = false;
  // The verify cost curve decides this call's draft lengths or the guard: calibrate it first.
  bool needs_calibration = false;
  // Proxy tuning reads the small model's base: Pair(small, large, small_base=...).
  bool needs_small_base = false;
};

// The plan for validated options, on a Pair (any method) or a Model (one model, n-gram drafts
// only when asked for).
CallPlan plan_for(const GenerateOptions& options, OptionsTarget target = OptionsTarget::Pair);

}  // namespace fsgen
