// Names of the enums, parsing with helpful errors, and option validation.
#include <cmath>
#include <string>

#include "fsgen/error.hpp"
#include "fsgen/options.hpp"
#include "fsgen/params.hpp"
#include "fsgen/types.hpp"

namespace fsgen {
namespace {

template <typename E, size_t N>
E parse_name(const std::string& name, const char* what, const std::pair<const char*, E> (&table)[N]) {
  std::string valid;
  for (const auto& [text, value] : table) {
    if (name == text) return value;
    valid += valid.empty() ? "" : ", ";
    valid += std::string("\"") + text + "\"";
  }
  throw InvalidArgumentError("unknown " + std::string(what) + " \"" + name + "\"; expected one of " + valid);
}

const std::pair<const char*, Method> kMethods[] = {
    {"small", Method::Small},          {"large", Method::Large},   {"speculative", Method::Speculative},
    {"contrastive", Method::Contrastive}, {"proxy", Method::Proxy}, {"fs", Method::FastSlow},
    {"oracle", Method::Oracle}};
const std::pair<const char*, Router> kRouters[] = {{"entropy", Router::Entropy}, {"top1", Router::Top1},
                                                   {"margin", Router::Margin},   {"budget", Router::Budget},
                                                   {"always", Router::Always},   {"never", Router::Never}};
const std::pair<const char*, System2Kind> kSystem2[] = {
    {"large", System2Kind::Large}, {"contrastive", System2Kind::Contrastive}, {"proxy", System2Kind::Proxy}};
const std::pair<const char*, ContrastiveVariant> kVariants[] = {{"standard", ContrastiveVariant::Standard},
                                                                {"fsgen", ContrastiveVariant::Fsgen}};
const std::pair<const char*, DraftSource> kDraftSources[] = {
    {"model", DraftSource::Model}, {"ngram", DraftSource::Ngram}, {"auto", DraftSource::Auto}};

template <typename E, size_t N>
const char* name_of(E value, const std::pair<const char*, E> (&table)[N]) {
  for (const auto& [text, v] : table)
    if (v == value) return text;
  return "?";
}

void require(bool ok, const std::string& message) {
  if (!ok) throw InvalidArgumentError(message);
}

}  // namespace

const char* to_string(Method m) { return name_of(m, kMethods); }
const char* to_string(Router r) { return name_of(r, kRouters); }
const char* to_string(System2Kind s) { return name_of(s, kSystem2); }
const char* to_string(ContrastiveVariant v) { return name_of(v, kVariants); }
const char* to_string(DraftSource d) { return d == DraftSource::None ? "none" : name_of(d, kDraftSources); }
const char* to_string(FinishReason f) {
  switch (f) {
    case FinishReason::Eog: return "eog";
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "?";
}
Method parse_method(const std::string& n) { return parse_name(n, "method", kMethods); }
Router parse_router(const std::string& n) { return parse_name(n, "router", kRouters); }
System2Kind parse_system2(const std::string& n) { return parse_name(n, "system2", kSystem2); }
ContrastiveVariant parse_contrastive_variant(const std::string& n) { return parse_name(n, "variant", kVariants); }
DraftSource parse_draft_source(const std::string& n) { return parse_name(n, "draft", kDraftSources); }

float RouterOptions::effective_threshold() const {
  if (threshold) return *threshold;
  switch (router) {
    case Router::Entropy: return 0.5f;  // nats
    case Router::Top1: return 0.5f;     // FS-GEN's `threshold`
    case Router::Margin: return 0.4f;   // FS-GEN's delta_threshold: (p1 - p2) / 2 < 0.2
    case Router::Budget: return 0.5f;   // where the adaptive threshold starts (nats)
    default: return 0.0f;
  }
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
