// Model and context options by name: the table make_model_options reads.
#include <cmath>
#include <string>

#include "fsgen/error.hpp"
#include "fsgen/params.hpp"

namespace fsgen {
namespace {

[[noreturn]] void fail(const std::string& message) { throw InvalidArgumentError(message); }

std::int64_t whole(const std::string& name, const ParamValue& v, std::int64_t lo, std::int64_t hi) {
  std::int64_t x = 0;
  if (const auto* i = std::get_if<std::int64_t>(&v)) x = *i;
  else if (const auto* u = std::get_if<std::uint64_t>(&v); u && *u <= std::uint64_t(hi)) x = std::int64_t(*u);
  else fail(name + " must be an integer, got " + describe_value(v));
  if (x < lo || x > hi) {
    fail(name + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + std::to_string(x));
  }
  return x;
}

ModelParamSpec int_option(std::string name, std::int64_t lo, std::int64_t hi, std::string doc, int ModelOptions::*field) {
  return {name, ParamType::Int, std::move(doc), [=](ModelOptions& o, const ParamValue& v) {
            o.*field = static_cast<int>(whole(name, v, lo, hi));
          }};
}

std::vector<ModelParamSpec> build_table() {
  std::vector<ModelParamSpec> t;
  t.push_back(int_option("n_ctx", 8, 1 << 24, "context length of each context fsgen creates (4096)", &ModelOptions::n_ctx));
  t.push_back(int_option("n_threads", 0, 1024, "CPU threads (0: physical cores, at most 8)", &ModelOptions::n_threads));
  t.push_back(int_option("n_gpu_layers", -1, 1 << 20, "layers offloaded to a GPU (-1: all; 0)", &ModelOptions::n_gpu_layers));
  t.push_back(int_option("n_batch", 1, 1 << 16, "logical and physical batch size (512)", &ModelOptions::n_batch));
  t.push_back(int_option("prompt_cache_mib", 0, 1 << 20,
                         "MiB of host memory per context for earlier prompts' states (256; 0: off)",
                         &ModelOptions::prompt_cache_mib));
  t.push_back({"verbose", ParamType::Bool, "forward llama.cpp's log to stderr (false)", [](ModelOptions& o, const ParamValue& v) {
                 const auto* b = std::get_if<bool>(&v);
                 if (!b) fail("verbose must be true or false, got " + describe_value(v));
                 o.verbose = *b;
               }});
  t.push_back({"flash_attn", ParamType::Bool, "flash attention on or off (unset: llama.cpp decides)",
               [](ModelOptions& o, const ParamValue& v) {
                 const auto* b = std::get_if<bool>(&v);
                 if (!b) fail("flash_attn must be unset (llama.cpp decides), true or false, got " + describe_value(v));
                 o.flash_attn = *b ? 1 : 0;
               }});
  t.push_back({"rpc", ParamType::StringList, "\"host:port\" of fsgen rpc-servers the model runs on",
               [](ModelOptions& o, const ParamValue& v) {
                 std::vector<std::string> endpoints;
                 if (const auto* s = std::get_if<std::string>(&v)) endpoints = {*s};
                 else if (const auto* l = std::get_if<std::vector<std::string>>(&v)) endpoints = *l;
                 bool ok = !endpoints.empty();
                 for (const auto& e : endpoints) ok = ok && !e.empty();
                 if (!ok) fail("rpc must be a non-empty list of \"host:port\" strings, got " + describe_value(v));
                 o.rpc = endpoints;
               }});
  t.push_back({"rpc_timeout", ParamType::Float, "seconds a remote call may go without progress (60)",
               [](ModelOptions& o, const ParamValue& v) {
                 double x = 0;
                 if (const auto* d = std::get_if<double>(&v)) x = *d;
                 else if (const auto* i = std::get_if<std::int64_t>(&v)) x = double(*i);
                 else fail("rpc_timeout must be a number, got " + describe_value(v));
                 if (!(x > 0) || !std::isfinite(x)) fail("rpc_timeout must be > 0 seconds, got " + describe_value(v));
                 o.rpc_timeout = x;
               }});
  return t;
}

}  // namespace

const std::vector<ModelParamSpec>& model_param_table() {
  static const std::vector<ModelParamSpec> table = build_table();
  return table;
}

ModelOptions make_model_options(const ParamMap& params) {
  ModelOptions o;
  for (const auto& [name, value] : params) {
    if (std::holds_alternative<std::monostate>(value)) continue;
    const ModelParamSpec* spec = nullptr;
    for (const auto& p : model_param_table()) if (p.name == name) spec = &p;
    if (spec == nullptr) {
      std::string names;
      for (const auto& p : model_param_table()) names += (names.empty() ? "" : ", ") + p.name;
      fail("unknown model option \"" + name + "\" (the model options: " + names + ")");
    }
    spec->set(o, value);
  }
  auto layers = params.find("n_gpu_layers");
  const bool layers_given = layers != params.end() && !std::holds_alternative<std::monostate>(layers->second);
  if (!o.rpc.empty() && !layers_given) o.n_gpu_layers = -1;  // rpc: every layer on the servers
  return o;
}

}  // namespace fsgen
