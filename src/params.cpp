// The table of methods and generation parameters, and options built from names and values.
// Adding a parameter is one entry here (and its field in options.hpp): Python's signatures and
// stubs, the CLI's flags, the server's fields and the docs' tables follow from it.
#include "fsgen/params.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "fsgen/error.hpp"

namespace fsgen {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
using M = Method;
using R = Router;
using S = System2Kind;

[[noreturn]] void fail(const std::string& message) { throw InvalidArgumentError(message); }

bool is_none(const ParamValue& v) { return std::holds_alternative<std::monostate>(v); }

double number(const std::string& name, const ParamValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* u = std::get_if<std::uint64_t>(&v)) return static_cast<double>(*u);
  if (const auto* d = std::get_if<double>(&v)) {
    if (std::isnan(*d)) fail(name + " must be a number, got NaN");
    return *d;
  }
  fail(name + " must be a number, got " + describe_value(v));
}

std::int64_t integer(const std::string& name, const ParamValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  fail(name + " must be an integer, got " + describe_value(v));
}

std::string name_value(const std::string& name, const ParamValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  fail(name + " must be a string, got " + describe_value(v));
}

// Setters and getters for a field reached through a member path.
template <typename Get>
ParamSpec number_param(std::string name, ParamType type, ParamGroup group, ParamValue def, std::optional<Range> range,
                       std::string doc, Get field) {
  ParamSpec p;
  p.name = name;
  p.type = type;
  p.group = group;
  p.default_value = std::move(def);
  p.range = range;
  p.doc = std::move(doc);
  const bool whole = type == ParamType::Int;
  p.set = [name, whole, field](GenerateOptions& o, const ParamValue& v) {
    auto& target = field(o);
    using T = std::remove_reference_t<decltype(target)>;
    if (whole) {
      if (const auto* u = std::get_if<std::uint64_t>(&v)) {
        target = static_cast<T>(*u);
        return;
      }
      target = static_cast<T>(integer(name, v));
    } else {
      target = static_cast<T>(number(name, v));
    }
  };
  p.get = [field](const GenerateOptions& o) -> ParamValue {
    auto& value = field(const_cast<GenerateOptions&>(o));
    if constexpr (std::is_floating_point_v<std::remove_reference_t<decltype(value)>>) return double(value);
    else if constexpr (std::is_unsigned_v<std::remove_reference_t<decltype(value)>>) return std::uint64_t(value);
    else return std::int64_t(value);
  };
  return p;
}

template <typename E, typename Parse, typename Name>
ParamSpec choice_param(std::string name, ParamGroup group, ParamValue def, std::vector<std::string> choices,
                       std::string doc, Parse parse, Name field) {
  ParamSpec p;
  p.name = name;
  p.type = ParamType::Choice;
  p.group = group;
  p.default_value = std::move(def);
  p.choices = std::move(choices);
  p.doc = std::move(doc);
  p.set = [name, parse, field](GenerateOptions& o, const ParamValue& v) { field(o) = parse(name_value(name, v)); };
  return p;
}

template <typename Field>
ParamSpec bool_param(std::string name, ParamGroup group, bool def, std::string doc, Field field) {
  ParamSpec p;
  p.name = name;
  p.type = ParamType::Bool;
  p.group = group;
  p.default_value = def;
  p.doc = std::move(doc);
  p.set = [name, field](GenerateOptions& o, const ParamValue& v) {
    const auto* b = std::get_if<bool>(&v);
    if (!b) fail(name + " must be True or False, got " + describe_value(v));
    field(o) = *b;
  };
  return p;
}

std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const auto& m : method_table()) names.push_back(m.name);
  return names;
}

std::vector<ParamSpec> build_table() {
  std::vector<ParamSpec> t;
  const auto G = ParamGroup::Generation, SG = ParamGroup::Sampling, MG = ParamGroup::Method;
  const std::vector<M> routed = {M::FastSlow, M::Oracle};

  // ---- every call ----
  t.push_back(choice_param<Method>("method", G, std::string("speculative"), method_names(),
                                   "decoding method (a Pair's; a Model runs one model)", parse_method,
                                   [](GenerateOptions& o) -> Method& { return o.method; }));
  t.push_back(number_param("max_tokens", ParamType::Int, G, std::int64_t(256), Range{0, double(1 << 24)},
                           "the most tokens to generate (also bounded by the context)",
                           [](GenerateOptions& o) -> int& { return o.max_tokens; }));
  {
    ParamSpec p;
    p.name = "stop";
    p.type = ParamType::StringList;
    p.group = G;
    p.doc = "stop strings (a string or a list); the text ends before the first one reached";
    p.set = [](GenerateOptions& o, const ParamValue& v) {
      if (const auto* s = std::get_if<std::string>(&v)) o.stop = {*s};
      else if (const auto* l = std::get_if<std::vector<std::string>>(&v)) o.stop = *l;
      else fail("stop must be a string or a list of strings, got " + describe_value(v));
    };
    t.push_back(p);
  }
  t.push_back(bool_param("trace", G, false, "record the per-token trace (Result.trace)",
                         [](GenerateOptions& o) -> bool& { return o.trace; }));

  // ---- sampling: apply to every method, used only when temperature > 0 ----
  t.push_back(number_param("temperature", ParamType::Float, SG, 0.0, Range{0, kInf},
                           "0 is greedy; above 0 samples (top_k, top_p, min_p apply then)",
                           [](GenerateOptions& o) -> float& { return o.sampling.temperature; }));
  t.push_back(number_param("top_k", ParamType::Int, SG, std::int64_t(40), Range{-2147483648.0, 2147483647.0},
                           "keep the k most likely tokens (0 or less: off)",
                           [](GenerateOptions& o) -> int& { return o.sampling.top_k; }));
  t.push_back(number_param("top_p", ParamType::Float, SG, 0.95, Range{0, 1, true, false},
                           "nucleus: keep the most likely tokens up to this mass (1: off)",
                           [](GenerateOptions& o) -> float& { return o.sampling.top_p; }));
  t.push_back(number_param("min_p", ParamType::Float, SG, 0.05, Range{0, 1},
                           "keep tokens at least this fraction of the top token's probability (0: off)",
                           [](GenerateOptions& o) -> float& { return o.sampling.min_p; }));
  t.push_back(number_param("seed", ParamType::Int, SG, std::int64_t(0), Range{0, 18446744073709551615.0},
                           "the sampler's random seed",
                           [](GenerateOptions& o) -> std::uint64_t& { return o.sampling.seed; }));

  // ---- method parameters ----
  {
    auto p = choice_param<DraftSource>(
        "draft", MG, std::monostate{}, {"model", "ngram", "auto"},
        "draft source: System 1's draft (\"model\"), n-gram lookup in the prompt and output (\"ngram\"), or the "
        "better of both each round (\"auto\"); one model: None or \"ngram\"",
        parse_draft_source, [](GenerateOptions& o) -> DraftSource& { return o.speculative.draft; });
    p.none_allowed = true;
    p.scopes = {{{M::Speculative}, {}, {}, std::string("auto")}, {{M::Small, M::Large}, {}, {}, std::monostate{}}};
    t.push_back(p);
  }
  {
    auto p = number_param("draft_max", ParamType::Int, MG, std::monostate{}, Range{1, 64},
                          "fixed draft length; None: chosen each round from measured costs and acceptance",
                          [](GenerateOptions& o) -> int& { return o.speculative.draft_max; });
    p.none_allowed = true;
    p.get = nullptr;  // 0 stands for None (adaptive): checked in validate()
    p.scopes = {{{M::Speculative, M::Small, M::Large}, {}, {}, std::monostate{}}};
    t.push_back(p);
  }
  {
    auto p = choice_param<CrossVocab>(
        "cross_vocab", MG, std::string("auto"), {"auto", "slem", "tli"},
        "a pair whose tokenizers differ: System 1's draft text re-tokenized by the large model (\"slem\"), or "
        "its distribution over the tokens both vocabularies hold (\"tli\"); \"auto\": each round the one whose "
        "drafts have been accepted more (slem first). Ignored where the vocabularies are the same",
        parse_cross_vocab, [](GenerateOptions& o) -> CrossVocab& { return o.speculative.cross_vocab; });
    p.scopes = {{{M::Speculative}, {}, {}, std::string("auto")}};
    t.push_back(p);
  }
  {
    auto p = number_param("draft_p_min", ParamType::Float, MG, 0.0, Range{0, 1},
                          "end a draft where System 1's top-1 probability falls below this",
                          [](GenerateOptions& o) -> float& { return o.speculative.draft_p_min; });
    p.scopes = {{{M::Speculative}, {}, {}, 0.0}};
    t.push_back(p);
  }
  {
    auto p = choice_param<Router>("router", MG, std::string("entropy"),
                                  {"entropy", "top1", "margin", "budget", "always", "never"},
                                  "when System 2 is consulted: System 1's entropy above, top-1 probability or "
                                  "margin (p1 - p2) below the threshold; budget: on a share of the tokens",
                                  parse_router, [](GenerateOptions& o) -> Router& { return o.router.router; });
    p.scopes = {{routed, {}, {}, std::string("entropy")}};
    t.push_back(p);
  }
  {
    ParamSpec p = number_param("threshold", ParamType::Float, MG, std::monostate{}, Range{-kInf, kInf},
                               "the router's threshold (entropy in nats, top1, margin)",
                               [](GenerateOptions& o) -> float& { return o.router.threshold.emplace(); });
    p.get = nullptr;
    p.scopes = {{routed, {R::Entropy}, {}, 0.5}, {routed, {R::Top1}, {}, 0.5}, {routed, {R::Margin}, {}, 0.4}};
    t.push_back(p);
  }
  {
    auto p = number_param("system2_share", ParamType::Float, MG, std::monostate{}, Range{0, 1, true, false},
                          "budget router: the share of tokens on which System 2 is consulted",
                          [](GenerateOptions& o) -> float& { return o.router.system2_share; });
    p.scopes = {{routed, {R::Budget}, {}, 0.1}};
    t.push_back(p);
  }
  {
    auto p = bool_param("guard", MG, true,
                        "fs: while fs runs behind the large model alone (measured) with System 2 consulted often, hand "
                        "the writing over to speculative verification (it then writes the large model's text; stats "
                        "guard_tokens); False: FS-GEN's method as published",
                        [](GenerateOptions& o) -> bool& { return o.router.guard; });
    p.default_value = std::monostate{};  // the scope gives it
    // Not with the budget router (the share asked for is the contract there), nor with "never"
    // (System 1 alone was asked for: nothing to guard).
    p.scopes = {{{M::FastSlow}, {R::Entropy, R::Top1, R::Margin, R::Always}, {S::Large}, true}};
    t.push_back(p);
  }
  {
    auto p = choice_param<System2Kind>("system2", MG, std::string("large"), {"large", "contrastive", "proxy"},
                                       "what System 2 does when consulted", parse_system2,
                                       [](GenerateOptions& o) -> System2Kind& { return o.system2; });
    p.scopes = {{routed, {}, {}, std::string("large")}};
    t.push_back(p);
  }
  {
    ParamSpec p;
    p.name = "alpha";
    p.type = ParamType::Float;
    p.group = MG;
    p.doc = "contrastive: plausibility cutoff, keep tokens with p_L >= alpha * max p_L, in (0, 1]; "
            "proxy: the weight of (logits_S - logits_Sbase)";
    p.set = [](GenerateOptions& o, const ParamValue& v) {
      const bool proxy = o.method == M::Proxy || (o.method != M::Contrastive && o.system2 == S::Proxy);
      (proxy ? o.proxy.alpha : o.contrastive.alpha) = static_cast<float>(number("alpha", v));
    };
    p.scopes = {{{M::Contrastive}, {}, {}, 0.1},
                {{M::Proxy}, {}, {}, 1.0},
                {routed, {}, {S::Contrastive}, 0.1},
                {routed, {}, {S::Proxy}, 1.0}};
    t.push_back(p);
  }
  {
    auto p = number_param("beta", ParamType::Float, MG, 0.5, Range{0, kInf},
                          "contrastive: the weight of the large-small difference",
                          [](GenerateOptions& o) -> float& { return o.contrastive.beta; });
    p.scopes = {{{M::Contrastive}, {}, {}, 0.5}, {routed, {}, {S::Contrastive}, 0.5}};
    t.push_back(p);
  }
  {
    auto p = choice_param<ContrastiveVariant>(
        "variant", MG, std::string("standard"), {"standard", "fsgen"},
        "contrastive: \"standard\" (1+beta) log p_L - beta log p_S (O'Brien & Lewis 2023); \"fsgen\" FS-GEN's "
        "logits_S + beta (logits_L - logits_S)",
        parse_contrastive_variant, [](GenerateOptions& o) -> ContrastiveVariant& { return o.contrastive.variant; });
    p.scopes = {{{M::Contrastive}, {}, {}, std::string("standard")}, {routed, {}, {S::Contrastive}, std::string("standard")}};
    t.push_back(p);
  }
  return t;
}

template <typename T>
bool among(const std::vector<T>& list, T value) {
  return list.empty() || std::find(list.begin(), list.end(), value) != list.end();
}

bool scope_matches(const ParamScope& s, Method m, Router r, System2Kind k) {
  return among(s.methods, m) && among(s.routers, r) && among(s.system2, k);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

}  // namespace

bool Range::contains(double x) const {
  if (!std::isfinite(x)) return false;  // no parameter takes an infinity or NaN
  if (lo_open ? !(x > lo) : !(x >= lo)) return false;
  return hi_open ? x < hi : x <= hi;
}

std::string Range::describe() const {
  auto num = [](double x) {
    if (x == std::floor(x) && std::fabs(x) < 1e20) {
      char buffer[32];
      std::snprintf(buffer, sizeof(buffer), "%.0f", x);
      return std::string(buffer);
    }
    std::ostringstream s;
    s << x;
    return s.str();
  };
  if (std::isinf(lo) && std::isinf(hi)) return "a finite number";
  if (std::isinf(hi)) return std::string(lo_open ? "> " : ">= ") + num(lo);
  return std::string("in ") + (lo_open ? "(" : "[") + num(lo) + ", " + num(hi) + (hi_open ? ")" : "]");
}

std::string describe_value(const ParamValue& v) {
  struct Visitor {
    std::string operator()(std::monostate) const { return "None"; }
    std::string operator()(bool b) const { return b ? "True" : "False"; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(std::uint64_t u) const { return std::to_string(u); }
    std::string operator()(double d) const {
      std::ostringstream s;
      s << d;
      return s.str();
    }
    std::string operator()(const std::string& s) const { return "\"" + s + "\""; }
    std::string operator()(const std::vector<std::string>& l) const {
      std::string out = "[";
      for (size_t i = 0; i < l.size(); ++i) out += (i ? ", \"" : "\"") + l[i] + "\"";
      return out + "]";
    }
  };
  return std::visit(Visitor{}, v);
}

const std::vector<MethodSpec>& method_table() {
  static const std::vector<MethodSpec> table = {
      {M::Small, "small", "System 1 (the small model) alone"},
      {M::Large, "large", "System 2 (the large model) alone"},
      {M::Speculative, "speculative",
       "System 1 drafts, System 2 verifies each draft in one batch; output follows the large model exactly"},
      {M::Contrastive, "contrastive", "contrastive decoding of the large model against the small one at every token"},
      {M::Proxy, "proxy", "proxy tuning: logits_Lbase + alpha (logits_S - logits_Sbase) at every token", true},
      {M::FastSlow, "fs", "fast and slow: System 1 writes; a router consults System 2 where System 1 is uncertain"},
      {M::Oracle, "oracle",
       "FS-GEN's analysis mode: System 2 decides every token; records where System 1's greedy token differed"},
  };
  return table;
}

const std::vector<ParamSpec>& param_table() {
  static const std::vector<ParamSpec> table = build_table();
  return table;
}

const ParamSpec* find_param(const std::string& name) {
  for (const auto& p : param_table())
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<std::string> applicable_params(Method method, Router router, System2Kind system2) {
  std::vector<std::string> names;
  for (const auto& p : param_table()) {
    if (p.group != ParamGroup::Method) continue;
    for (const auto& s : p.scopes) {
      if (scope_matches(s, method, router, system2)) {
        names.push_back(p.name);
        break;
      }
    }
  }
  return names;
}

ParamValue param_default(const std::string& name, Method method, Router router, System2Kind system2) {
  const ParamSpec* p = find_param(name);
  if (p == nullptr) return std::monostate{};
  if (p->group != ParamGroup::Method) return p->default_value;
  for (const auto& s : p->scopes)
    if (scope_matches(s, method, router, system2)) return s.default_value;
  return std::monostate{};
}

GenerateOptions make_generate_options(const ParamMap& params, OptionsTarget target) {
  GenerateOptions o;
  o.method = target == OptionsTarget::Model ? Method::Small : Method::Speculative;
  auto given = [&](const std::string& name) -> const ParamValue* {
    auto it = params.find(name);
    return it == params.end() || is_none(it->second) ? nullptr : &it->second;
  };
  // The context first: which parameters apply depends on the method, router and System 2.
  for (const char* name : {"method", "router", "system2"}) {
    if (const ParamValue* v = given(name)) {
      if (target == OptionsTarget::Model && std::string(name) == "method") {
        fail("a Model runs one model and takes no method; use a Pair for \"" + name_value(name, *v) + "\"");
      }
      find_param(name)->set(o, *v);
    }
  }
  const bool routed = o.method == Method::FastSlow || o.method == Method::Oracle;
  const bool one_model = o.method == Method::Small || o.method == Method::Large;
  if (one_model) o.speculative.draft = DraftSource::None;  // one model drafts only when asked
  const std::string context = target == OptionsTarget::Model ? std::string("a Model")
                              : routed ? "method \"" + std::string(to_string(o.method)) + "\" with router \"" +
                                             to_string(o.router.router) + "\" and system2 \"" +
                                             to_string(o.system2) + "\""
                                       : "method \"" + std::string(to_string(o.method)) + "\"";
  const auto applicable = applicable_params(o.method, o.router.router, o.system2);
  for (const auto& [name, value] : params) {
    const ParamSpec* p = find_param(name);
    if (p == nullptr) {
      fail("unknown parameter \"" + name + "\" (" + context + " takes: " + join(applicable) +
           "; every call takes the generation and sampling parameters)");
    }
    if (is_none(value)) {
      // None stands for "the default" only where the default is None (it depends on the
      // context, or None is a value of its own): elsewhere it is a wrong value.
      if (!is_none(p->default_value)) fail(name + " must not be None (its default: " + describe_value(p->default_value) + ")");
      continue;
    }
    if (p->group == ParamGroup::Method &&
        std::find(applicable.begin(), applicable.end(), name) == applicable.end()) {
      fail(context + " takes no parameter " + name + " (its parameters: " + join(applicable) + ")");
    }
    if (name == "method" || name == "router" || name == "system2") continue;  // set above
    if (name == "draft" && one_model && name_value(name, value) != "ngram") {
      fail(context + " drafts with draft=\"ngram\" or not at all (draft=None); got " + describe_value(value));
    }
    if (p->range && p->type != ParamType::Choice) {
      const double x = p->type == ParamType::Int && std::holds_alternative<double>(value) ? integer(name, value)
                                                                                          : number(name, value);
      if (!p->range->contains(x)) fail(name + " must be " + p->range->describe() + ", got " + describe_value(value));
    }
    p->set(o, value);
  }
  return o;  // the rules across parameters are checked once, where the call starts (validate())
}

}  // namespace fsgen
