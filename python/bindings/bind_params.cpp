// The parameter table and method table as plain Python data, options built from names and
// values, the plan of a call, and the routers' rule (for the study).
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/variant.h>
#include <nanobind/stl/vector.h>

#include "bindings.hpp"
#include "fsgen/options.hpp"
#include "fsgen/params.hpp"
#include "fsgen/plan.hpp"

namespace fsgen_bindings {
namespace {

using namespace nb::literals;

const char* type_name(fsgen::ParamType t) {
  switch (t) {
    case fsgen::ParamType::Bool: return "bool";
    case fsgen::ParamType::Int: return "int";
    case fsgen::ParamType::Float: return "float";
    case fsgen::ParamType::Choice: return "choice";
    case fsgen::ParamType::StringList: return "str_list";
  }
  return "?";
}

const char* group_name(fsgen::ParamGroup g) {
  switch (g) {
    case fsgen::ParamGroup::Generation: return "generation";
    case fsgen::ParamGroup::Sampling: return "sampling";
    case fsgen::ParamGroup::Method: return "method";
  }
  return "?";
}

template <typename E>
nb::list names_of(const std::vector<E>& values) {
  nb::list out;
  for (E v : values) out.append(fsgen::to_string(v));
  return out;
}

nb::list param_table_list() {
  nb::list out;
  for (const fsgen::ParamSpec& p : fsgen::param_table()) {
    nb::dict d;
    d["name"] = p.name;
    d["type"] = type_name(p.type);
    d["group"] = group_name(p.group);
    d["doc"] = p.doc;
    d["default"] = nb::cast(p.default_value);
    d["choices"] = p.choices;
    d["none_allowed"] = p.none_allowed;
    if (p.range) {
      nb::dict r;
      r["lo"] = p.range->lo;
      r["hi"] = p.range->hi;
      r["lo_open"] = p.range->lo_open;
      r["hi_open"] = p.range->hi_open;
      r["text"] = p.range->describe();
      d["range"] = r;
    } else {
      d["range"] = nb::none();
    }
    nb::list scopes;
    for (const auto& scope : p.scopes) {
      nb::dict s;
      s["methods"] = names_of(scope.methods);
      s["routers"] = names_of(scope.routers);
      s["system2"] = names_of(scope.system2);
      s["default"] = nb::cast(scope.default_value);
      scopes.append(s);
    }
    d["scopes"] = scopes;
    out.append(d);
  }
  return out;
}

nb::list method_table_list() {
  nb::list out;
  for (const fsgen::MethodSpec& m : fsgen::method_table()) {
    nb::dict d;
    d["name"] = m.name;
    d["doc"] = m.doc;
    d["needs_small_base"] = m.needs_small_base;
    out.append(d);
  }
  return out;
}

fsgen::OptionsTarget target_of(bool for_model) {
  return for_model ? fsgen::OptionsTarget::Model : fsgen::OptionsTarget::Pair;
}

}  // namespace

void bind_params(nb::module_& m) {
  nb::class_<fsgen::ModelOptions>(m, "ModelOptions")
      .def(nb::init<>())
      .def_rw("n_ctx", &fsgen::ModelOptions::n_ctx)
      .def_rw("n_threads", &fsgen::ModelOptions::n_threads)
      .def_rw("n_gpu_layers", &fsgen::ModelOptions::n_gpu_layers)
      .def_rw("n_batch", &fsgen::ModelOptions::n_batch)
      .def_rw("verbose", &fsgen::ModelOptions::verbose)
      .def_rw("flash_attn", &fsgen::ModelOptions::flash_attn)
      .def_rw("prompt_cache_mib", &fsgen::ModelOptions::prompt_cache_mib)
      .def_rw("rpc", &fsgen::ModelOptions::rpc)
      .def_rw("rpc_timeout", &fsgen::ModelOptions::rpc_timeout);

  // Built from names and values by make_options (the parameter table validates them); opaque here.
  nb::class_<fsgen::GenerateOptions>(m, "GenerateOptions")
      .def_prop_ro("method", [](const fsgen::GenerateOptions& o) { return std::string(fsgen::to_string(o.method)); });

  m.def("make_model_options", &fsgen::make_model_options, "params"_a,
        "Model options from names and values (None: the default); the core's model option table checks them.");
  m.def("model_option_names",
        [] {
          std::vector<std::string> names;
          for (const auto& p : fsgen::model_param_table()) names.push_back(p.name);
          return names;
        },
        "The model options' names, in the core's table order.");
  m.def("param_table", &param_table_list, "The generation parameters: names, types, defaults, ranges, scopes.");
  m.def("method_table", &method_table_list, "The decoding methods.");
  m.def("applicable_params",
        [](const std::string& method, const std::string& router, const std::string& system2) {
          return fsgen::applicable_params(fsgen::parse_method(method), fsgen::parse_router(router),
                                          fsgen::parse_system2(system2));
        },
        "method"_a, "router"_a = "entropy", "system2"_a = "large");
  m.def("make_options",
        [](const fsgen::ParamMap& params, bool for_model) {
          return fsgen::make_generate_options(params, target_of(for_model));
        },
        "params"_a, "for_model"_a = false);
  m.def("plan_for",
        [](const fsgen::GenerateOptions& options, bool for_model) {
          const fsgen::CallPlan plan = fsgen::plan_for(options, target_of(for_model));
          nb::dict d;
          d["strategy"] = fsgen::to_string(plan.strategy);
          d["guarded"] = plan.guarded;
          d["needs_calibration"] = plan.needs_calibration;
          d["needs_small_base"] = plan.needs_small_base;
          return d;
        },
        "options"_a, "for_model"_a = false,
        "The plan of a call with these options: strategy, guarded, needs_calibration, needs_small_base.");
  m.def("route",
        [](const std::string& router, nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu> values,
           std::optional<float> threshold) {
          fsgen::RouterOptions options;
          options.router = fsgen::parse_router(router);
          options.threshold = threshold;
          std::vector<std::uint8_t> flags(values.shape(0));
          for (size_t i = 0; i < flags.size(); ++i) flags[i] = options.consults(values(i));
          return to_numpy(std::move(flags));
        },
        "router"_a, "values"_a, "threshold"_a.none() = nb::none(),
        "Where the router consults System 2 for these values of its feature (the core's own rule).");
}

}  // namespace fsgen_bindings
