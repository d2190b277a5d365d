// The one table of generation parameters and methods: names, types, defaults, ranges, where each
// parameter applies. The core validates against it; the bindings export it, and the Python API,
// the CLI, the server, the stubs and the tests read it instead of keeping lists of their own.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "fsgen/options.hpp"
#include "fsgen/types.hpp"

namespace fsgen {

// A parameter's value as a caller gives it: absent (None), a flag, a whole number, a real
// number, a name, or a list of strings.
using ParamValue =
    std::variant<std::monostate, bool, std::int64_t, std::uint64_t, double, std::string, std::vector<std::string>>;
using ParamMap = std::map<std::string, ParamValue>;

enum class ParamType { Bool, Int, Float, Choice, StringList };
// Generation and sampling parameters apply to every method; method parameters only where their
// scopes say (sampling parameters are never "not applicable": clients send them with every call).
enum class ParamGroup { Generation, Sampling, Method };

// Where a method parameter applies (empty lists: any), and its default there.
struct ParamScope {
  std::vector<Method> methods;
  std::vector<Router> routers;
  std::vector<System2Kind> system2;
  ParamValue default_value;
};

struct Range {
  double lo, hi;
  bool lo_open = false, hi_open = false;
  bool contains(double x) const;
  std::string describe() const;  // "in (0, 1]", ">= 0", ...
};

struct ParamSpec {
  std::string name;
  ParamType type;
  ParamGroup group;
  std::string doc;
  // The value a signature shows. None where the default depends on the context (the method, the
  // router): then the scopes give it.
  ParamValue default_value;
  std::vector<std::string> choices;  // ParamType::Choice
  std::optional<Range> range;        // numbers
  bool none_allowed = false;         // None is a value of its own (draft_max=None: adaptive)
  std::vector<ParamScope> scopes;    // ParamGroup::Method only
  std::function<void(GenerateOptions&, const ParamValue&)> set;
  std::function<ParamValue(const GenerateOptions&)> get;  // for range checks; empty if checked elsewhere
};

struct MethodSpec {
  Method method;
  std::string name;
  std::string doc;
  bool needs_small_base = false;
};

const std::vector<ParamSpec>& param_table();
const std::vector<MethodSpec>& method_table();
const ParamSpec* find_param(const std::string& name);

// Where options are used: a Pair's generate (any method) or a Model's (one model, no `method`).
enum class OptionsTarget { Pair, Model };

// The method parameters that apply to a method under a router and a System 2 kind.
std::vector<std::string> applicable_params(Method method, Router router, System2Kind system2);

// A parameter's default where it applies to a method, router and System 2 kind (None where it does
// not apply or has no default there).
ParamValue param_default(const std::string& name, Method method, Router router, System2Kind system2);

// Builds options from names and values: unknown names, wrong types, values out of range, and
// method parameters that do not apply are InvalidArgumentError naming what would be accepted. A
// None value means "not given". The rules across parameters (GenerateOptions::validate) are
// checked where the call starts (Model/Pair::check, start, generate).
GenerateOptions make_generate_options(const ParamMap& params, OptionsTarget target = OptionsTarget::Pair);

// Model and context options (ModelOptions) by name, for callers that pass names (the C API): the
// one list of their names, types and ranges.
struct ModelParamSpec {
  std::string name;
  ParamType type;  // Bool, Int, Float or StringList
  std::string doc;
  std::function<void(ModelOptions&, const ParamValue&)> set;  // checks the value
};
const std::vector<ModelParamSpec>& model_param_table();
// Builds ModelOptions from names and values (None: the default); unknown names, wrong types and
// values out of range are InvalidArgumentError. rpc without n_gpu_layers puts every layer there.
ModelOptions make_model_options(const ParamMap& params);

// The parameter's default in a context, for docs and help texts ("0.1", "None", "the router's").
std::string describe_value(const ParamValue& value);

}  // namespace fsgen
