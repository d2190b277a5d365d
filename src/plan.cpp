#include "fsgen/plan.hpp"

#include <algorithm>

namespace fsgen {

const char* to_string(StrategyKind kind) {
  switch (kind) {
    case StrategyKind::Single: return "single";
    case StrategyKind::Speculative: return "speculative";
    case StrategyKind::FastSlow: return "fast_slow";
  }
  return "?";
}

CallPlan plan_for(const GenerateOptions& options, OptionsTarget target) {
  CallPlan plan;
  const bool ngram_drafts = options.speculative.draft == DraftSource::Ngram;
  if (target == OptionsTarget::Model) {
    plan.strategy = ngram_drafts ? StrategyKind::Speculative : StrategyKind::Single;
    plan.needs_calibration = ngram_drafts;
    return plan;
  }
  switch (options.method) {
    case Method::Small:
      // System 1 verifying its own n-gram drafts: its planner learns its costs as it goes (the
      // pair's calibration measures the large model).
      plan.strategy = ngram_drafts ? StrategyKind::Speculative : StrategyKind::Single;
      break;
    case Method::Large:
      plan.strategy = ngram_drafts ? StrategyKind::Speculative : StrategyKind::Single;
      plan.needs_calibration = ngram_drafts;
      break;
    case Method::Speculative:
      plan.strategy = StrategyKind::Speculative;
      plan.needs_calibration = true;
      break;
    case Method::Contrastive:
    case Method::Proxy:
      plan.strategy = StrategyKind::FastSlow;
      plan.needs_small_base = options.method == Method::Proxy;
      break;
    case Method::FastSlow:
    case Method::Oracle: {
      plan.strategy = StrategyKind::FastSlow;
      plan.needs_small_base = options.system2 == System2Kind::Proxy;
      const auto applicable = applicable_params(options.method, options.router.router, options.system2);
      plan.guarded = options.router.guard && options.method == Method::FastSlow &&
                     std::find(applicable.begin(), applicable.end(), "guard") != applicable.end();
      plan.needs_calibration = plan.guarded;  // the guard weighs fs against the large model's cost
      break;
    }
  }
  return plan;
}

}  // namespace fsgen
