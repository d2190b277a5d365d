// Rules on options as a whole: the ones no single parameter can check, and the router's
// threshold where none was given (its default comes from the parameter table).
#include <cmath>
#include <string>

#include "fsgen/error.hpp"
#include "fsgen/options.hpp"
#include "fsgen/params.hpp"

namespace fsgen {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw InvalidArgumentError(message);
}

}  // namespace

float RouterOptions::effective_threshold() const {
  if (threshold) return *threshold;
  // Each router's default from the table, read once (this runs per token). The budget router's
  // adaptive threshold starts where the entropy router's default is.
  static const auto table_default = [](Router r) {
    const ParamValue v = param_default("threshold", Method::FastSlow, r, System2Kind::Large);
    return std::holds_alternative<double>(v) ? static_cast<float>(std::get<double>(v)) : 0.0f;
  };
  static const float entropy = table_default(Router::Entropy), top1 = table_default(Router::Top1),
                     margin = table_default(Router::Margin);
  switch (router) {
    case Router::Entropy:
    case Router::Budget: return entropy;
    case Router::Top1: return top1;
    case Router::Margin: return margin;
    default: return 0.0f;
  }
}

void Prompt::check() const {
  require(text.has_value() != !messages.empty(), "give exactly one of prompt or messages");
  require(!text || !text->empty(), "the prompt is empty");
}

void GenerateOptions::validate() const {
  // Every number the table gives a range and a getter for, checked against it.
  for (const ParamSpec& p : param_table()) {
    if (!p.range || !p.get) continue;
    const ParamValue v = p.get(*this);
    const double x = std::holds_alternative<double>(v)          ? std::get<double>(v)
                     : std::holds_alternative<std::int64_t>(v) ? double(std::get<std::int64_t>(v))
                                                               : double(std::get<std::uint64_t>(v));
    require(p.range->contains(x), p.name + " must be " + p.range->describe() + ", got " + describe_value(v));
  }
  for (const auto& stop_string : stop) require(!stop_string.empty(), "stop strings must not be empty");
  // Fields the table checks only where they are given.
  require(speculative.draft_max >= 0 && speculative.draft_max <= 64, "draft_max must be None or in [1, 64]");
  require(speculative.adaptive_max >= 1 && speculative.adaptive_max <= 64, "adaptive_max must be in [1, 64]");
  if (router.threshold) require(std::isfinite(*router.threshold), "threshold must be a finite number");
  if (method == Method::Contrastive || system2 == System2Kind::Contrastive) {
    require(std::isfinite(contrastive.alpha) && contrastive.alpha > 0 && contrastive.alpha <= 1,
            "contrastive alpha must be in (0, 1]");
  }
  require(std::isfinite(proxy.alpha), "proxy alpha must be a finite number");
  const bool one_model = method == Method::Small || method == Method::Large;
  require(!(one_model && speculative.draft == DraftSource::Model),
          "draft \"model\" needs method \"speculative\" (one model drafts with \"ngram\" or not at all)");
  require(!(one_model && speculative.draft_max > 0 && speculative.draft != DraftSource::Ngram),
          "draft_max with one model needs draft=\"ngram\" (a draft source)");
}

}  // namespace fsgen
