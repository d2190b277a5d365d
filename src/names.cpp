// Names of the enums as the Python API and the CLI spell them, and parsing with helpful errors.
#include <string>

#include "fsgen/error.hpp"
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
const std::pair<const char*, CrossVocab> kCrossVocab[] = {
    {"auto", CrossVocab::Auto}, {"slem", CrossVocab::Slem}, {"tli", CrossVocab::Tli}};
const std::pair<const char*, DraftSource> kDraftSources[] = {
    {"model", DraftSource::Model}, {"ngram", DraftSource::Ngram}, {"auto", DraftSource::Auto}};

template <typename E, size_t N>
const char* name_of(E value, const std::pair<const char*, E> (&table)[N]) {
  for (const auto& [text, v] : table)
    if (v == value) return text;
  return "?";
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
CrossVocab parse_cross_vocab(const std::string& n) { return parse_name(n, "cross_vocab", kCrossVocab); }

}  // namespace fsgen
