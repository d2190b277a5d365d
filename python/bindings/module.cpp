// fsgen._core: registration only. Types are converted, errors mapped once to fsgen.errors;
// no decoding logic lives here. Long calls release the GIL; generation runs on a
// GenerationJob's worker thread, so Python waits in short, interruptible slices.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/variant.h>
#include <nanobind/stl/vector.h>

#include <cstring>

#include "fsgen/fsgen.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

// A numpy array that owns a moved-in vector (flags come as uint8; Python views them as bool).
template <typename T>
nb::object to_numpy(std::vector<T>&& values) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::cast(nb::ndarray<nb::numpy, T, nb::ndim<1>>(owned->data(), {owned->size()}, owner));
}

nb::dict stats_dict(const fsgen::Stats& s) {
  nb::dict d;
  d["n_prompt_tokens"] = s.n_prompt_tokens;
  d["n_tokens"] = s.n_tokens;
  d["prompt_seconds"] = s.prompt_seconds;
  d["generation_seconds"] = s.generation_seconds;
  d["seconds"] = s.seconds;
  d["tokens_per_second"] = s.tokens_per_second;
  d["system2_calls"] = s.system2_calls;
  d["system2_fraction"] = s.system2_fraction;
  d["mismatches"] = s.mismatches;
  d["mismatch_fraction"] = s.mismatch_fraction;
  d["drafted"] = s.drafted;
  d["accepted"] = s.accepted;
  d["drafted_ngram"] = s.drafted_ngram;
  d["accepted_ngram"] = s.accepted_ngram;
  d["acceptance_rate"] = s.acceptance_rate;
  d["mean_accepted_length"] = s.mean_accepted_length;
  d["guard_tokens"] = s.guard_tokens;
  return d;
}

// The trace as a dict of numpy arrays (moved out of the result).
nb::dict trace_dict(fsgen::Trace&& t) {
  nb::dict d;
  d["token"] = to_numpy(std::move(t.token));
  d["source"] = to_numpy(std::move(t.source));
  d["entropy"] = to_numpy(std::move(t.entropy));
  d["top1"] = to_numpy(std::move(t.top1));
  d["margin"] = to_numpy(std::move(t.margin));
  d["system2_called"] = to_numpy(std::move(t.system2_called));
  d["mismatch"] = to_numpy(std::move(t.mismatch));
  d["text_offset"] = to_numpy(std::move(t.text_offset));
  d["draft_source"] = to_numpy(std::move(t.draft_source));
  d["draft_round_source"] = to_numpy(std::move(t.draft_round_source));
  d["draft_length"] = to_numpy(std::move(t.draft_length));
  d["draft_accepted"] = to_numpy(std::move(t.draft_accepted));
  return d;
}

fsgen::Prompt make_prompt(const std::optional<std::string>& text,
                          const std::optional<std::vector<std::pair<std::string, std::string>>>& messages) {
  if (text.has_value() == messages.has_value()) {
    throw fsgen::InvalidArgumentError("give exactly one of prompt or messages");
  }
  if (text) return fsgen::Prompt::from_text(*text);
  std::vector<fsgen::ChatMessage> chat;
  for (const auto& [role, content] : *messages) chat.push_back({role, content});
  if (chat.empty()) throw fsgen::InvalidArgumentError("messages is empty");
  return fsgen::Prompt::from_messages(std::move(chat));
}

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

// The parameter table as plain Python data (fsgen.param_table()).
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

void register_exceptions() {
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    auto raise = [](const char* name, const char* what) {
      nb::object cls = nb::module_::import_("fsgen.errors").attr(name);
      // Messages may quote bytes from a damaged file: never fail on invalid UTF-8.
      PyObject* message = PyUnicode_DecodeUTF8(what, static_cast<Py_ssize_t>(std::strlen(what)), "replace");
      if (message == nullptr) {
        PyErr_Clear();
        PyErr_SetString(cls.ptr(), "(unprintable error message)");
        return;
      }
      PyErr_SetObject(cls.ptr(), message);
      Py_DECREF(message);
    };
    try {
      std::rethrow_exception(p);
    } catch (const fsgen::ModelLoadError& e) {
      raise("ModelLoadError", e.what());
    } catch (const fsgen::IncompatibleVocabError& e) {
      raise("IncompatibleVocabError", e.what());
    } catch (const fsgen::TemplateError& e) {
      raise("TemplateError", e.what());
    } catch (const fsgen::ContextOverflowError& e) {
      raise("ContextOverflowError", e.what());
    } catch (const fsgen::GenerationError& e) {
      raise("GenerationError", e.what());
    } catch (const fsgen::InvalidArgumentError& e) {
      raise("InvalidArgumentError", e.what());
    } catch (const fsgen::Error& e) {
      raise("FsgenError", e.what());
    }
  });
}

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "fsgen's C++ core (use the fsgen package, not this module)";
  register_exceptions();

  nb::class_<fsgen::ModelOptions>(m, "ModelOptions")
      .def(nb::init<>())
      .def_rw("n_ctx", &fsgen::ModelOptions::n_ctx)
      .def_rw("n_threads", &fsgen::ModelOptions::n_threads)
      .def_rw("n_gpu_layers", &fsgen::ModelOptions::n_gpu_layers)
      .def_rw("n_batch", &fsgen::ModelOptions::n_batch)
      .def_rw("verbose", &fsgen::ModelOptions::verbose)
      .def_rw("flash_attn", &fsgen::ModelOptions::flash_attn)
      .def_rw("rpc", &fsgen::ModelOptions::rpc)
      .def_rw("rpc_timeout", &fsgen::ModelOptions::rpc_timeout);

  // Built from names and values by make_options (the parameter table validates them); opaque here.
  nb::class_<fsgen::GenerateOptions>(m, "GenerateOptions")
      .def_prop_ro("method", [](const fsgen::GenerateOptions& o) { return std::string(fsgen::to_string(o.method)); });

  nb::class_<fsgen::Result>(m, "Result")
      .def_ro("text", &fsgen::Result::text)
      .def_ro("tokens", &fsgen::Result::tokens)
      .def_prop_ro("finish_reason", [](const fsgen::Result& r) { return std::string(fsgen::to_string(r.finish_reason)); })
      .def_prop_ro("stats", [](const fsgen::Result& r) { return stats_dict(r.stats); })
      .def_ro("has_trace", &fsgen::Result::has_trace)
      .def("take_trace", [](fsgen::Result& r) { return trace_dict(std::move(r.trace)); });

  nb::class_<fsgen::Chunk>(m, "Chunk")
      .def_ro("text", &fsgen::Chunk::text)
      .def_prop_ro("source", [](const fsgen::Chunk& c) { return static_cast<int>(c.source); })
      .def_ro("token", &fsgen::Chunk::token);

  nb::class_<fsgen::GenerationJob>(m, "Job")
      .def("next_chunk", &fsgen::GenerationJob::next_chunk, "timeout"_a, nb::call_guard<nb::gil_scoped_release>())
      .def("wait", &fsgen::GenerationJob::wait, "timeout"_a, nb::call_guard<nb::gil_scoped_release>())
      .def("done", &fsgen::GenerationJob::done)
      .def("cancel", &fsgen::GenerationJob::cancel, nb::call_guard<nb::gil_scoped_release>())
      .def("take_result", &fsgen::GenerationJob::take_result, nb::call_guard<nb::gil_scoped_release>());

  nb::class_<fsgen::Model>(m, "Model")
      .def_static("load", &fsgen::Model::load, "path"_a, "options"_a, nb::call_guard<nb::gil_scoped_release>())
      .def_prop_ro("info", [](const fsgen::Model& model) {
        const fsgen::ModelInfo& i = model.info();
        nb::dict d;
        d["path"] = i.path;
        d["architecture"] = i.architecture;
        d["name"] = i.name;
        d["description"] = i.description;
        d["n_params"] = i.n_params;
        d["size_bytes"] = i.size_bytes;
        d["file_type"] = i.file_type;
        d["n_vocab"] = i.n_vocab;
        d["n_layer"] = i.n_layer;
        d["n_embd"] = i.n_embd;
        d["n_ctx_train"] = i.n_ctx_train;
        d["chat_template"] = i.chat_template;
        return d;
      })
      .def("tokenize", &fsgen::Model::tokenize, "text"_a, "parse_special"_a = true)
      .def("detokenize", &fsgen::Model::detokenize, "tokens"_a)
      .def("apply_chat_template",
           [](const fsgen::Model& model, const std::vector<std::pair<std::string, std::string>>& messages, bool add) {
             std::vector<fsgen::ChatMessage> chat;
             for (const auto& [role, content] : messages) chat.push_back({role, content});
             return model.apply_chat_template(chat, add);
           },
           "messages"_a, "add_assistant"_a = true)
      .def("start",
           [](fsgen::Model& model, std::optional<std::string> text,
              std::optional<std::vector<std::pair<std::string, std::string>>> messages,
              const fsgen::GenerateOptions& options, bool stream) {
             options.validate();
             fsgen::Prompt prompt = make_prompt(text, messages);
             return new fsgen::GenerationJob(
                 [model, prompt, options](const fsgen::ChunkCallback& cb, const std::atomic<bool>* stop) mutable {
                   return model.generate(prompt, options, cb, stop);
                 },
                 stream);
           },
           "prompt"_a.none(), "messages"_a.none(), "options"_a, "stream"_a, nb::rv_policy::take_ownership)
      .def("cancel", &fsgen::Model::cancel)
      .def("planner", &fsgen::Model::planner, nb::call_guard<nb::gil_scoped_release>())
      .def("calibrate", [](fsgen::Model& m) {
             nb::gil_scoped_release release;
             const fsgen::CostCurve c = m.calibrate();
             return std::make_pair(c.verify, c.draft);
           })
      .def("set_calibration", [](fsgen::Model& m, const std::vector<double>& verify, double draft) {
             m.set_calibration(fsgen::CostCurve{verify, draft});
           }, "verify"_a, "draft"_a)
      .def("close", &fsgen::Model::close, nb::call_guard<nb::gil_scoped_release>())
      .def_prop_ro("closed", &fsgen::Model::closed)
      .def("rpc_stats", [](const fsgen::Model& model) -> std::optional<nb::dict> {
        const auto s = fsgen::remote_stats(model);
        if (!s) return std::nullopt;
        nb::dict d;
        d["endpoints"] = s->endpoints;
        d["lost"] = s->lost;
        d["evals"] = s->evals;
        d["rows"] = s->rows;
        d["round_trip_seconds"] = s->round_trip_seconds;
        d["helper_seconds"] = s->helper_seconds;
        d["overhead_per_eval"] = s->overhead_per_eval();
        return d;
      });

  nb::class_<fsgen::Pair>(m, "Pair")
      .def("__init__",
           [](fsgen::Pair* self, const fsgen::Model& small, const fsgen::Model& large,
              std::optional<fsgen::Model> small_base, const fsgen::ModelOptions& options) {
             new (self) fsgen::Pair(small, large, small_base, options);
           },
           "small"_a, "large"_a, "small_base"_a.none(), "options"_a, nb::call_guard<nb::gil_scoped_release>())
      .def("start",
           [](fsgen::Pair& pair, std::optional<std::string> text,
              std::optional<std::vector<std::pair<std::string, std::string>>> messages,
              const fsgen::GenerateOptions& options, bool stream) {
             options.validate();
             fsgen::Prompt prompt = make_prompt(text, messages);
             fsgen::Pair* p = &pair;
             return new fsgen::GenerationJob(
                 [p, prompt, options](const fsgen::ChunkCallback& cb, const std::atomic<bool>* stop) {
                   return p->generate(prompt, options, cb, stop);
                 },
                 stream);
           },
           "prompt"_a.none(), "messages"_a.none(), "options"_a, "stream"_a, nb::keep_alive<0, 1>(),
           nb::rv_policy::take_ownership)
      .def("cancel", &fsgen::Pair::cancel)
      .def("close", &fsgen::Pair::close, nb::call_guard<nb::gil_scoped_release>())
      .def_prop_ro("large_lost", &fsgen::Pair::large_lost)
      .def("reload_large", &fsgen::Pair::reload_large, nb::call_guard<nb::gil_scoped_release>())
      .def("planner", &fsgen::Pair::planner, nb::call_guard<nb::gil_scoped_release>())
      .def("calibrate", [](fsgen::Pair& p, bool drafter) {
             nb::gil_scoped_release release;
             const fsgen::CostCurve c = p.calibrate(drafter);
             return std::make_pair(c.verify, c.draft);
           }, "drafter"_a = true)
      .def("set_calibration", [](fsgen::Pair& p, const std::vector<double>& verify, double draft) {
             p.set_calibration(fsgen::CostCurve{verify, draft});
           }, "verify"_a, "draft"_a);

  // The draft planner: returned by Pair.planner(), and constructible so that tests can drive it
  // with injected costs. Origins: 1 System 1's drafts, 2 n-gram drafts.
  auto origin = [](int o) { return static_cast<fsgen::DraftOrigin>(o); };
  nb::class_<fsgen::DraftPlanner>(m, "DraftPlanner")
      .def(nb::init<double>(), "small_to_large_cost"_a = 0.35)
      .def("observe_draft_step", &fsgen::DraftPlanner::observe_draft_step, "seconds"_a)
      .def("observe_verify", &fsgen::DraftPlanner::observe_verify, "rows"_a, "seconds"_a)
      .def("observe_round",
           [origin](fsgen::DraftPlanner& p, int o, int judged, int accepted, int match) {
             p.observe_round(origin(o), judged, accepted, match);
           },
           "origin"_a, "judged"_a, "accepted"_a, "match"_a = 0)
      .def("begin_prompt", &fsgen::DraftPlanner::begin_prompt)
      .def("choose", [origin](fsgen::DraftPlanner& p, int o, int max_length, int match, int lag, int horizon) {
             return p.choose(origin(o), max_length, match, lag, horizon);
           }, "origin"_a, "max_length"_a, "match"_a = 0, "lag"_a = 0, "horizon"_a = -1)
      .def_prop_ro("probing", &fsgen::DraftPlanner::probing)
      .def("catch_up_cost", &fsgen::DraftPlanner::catch_up_cost, "tokens"_a)
      .def("expected_rate", [origin](const fsgen::DraftPlanner& p, int o, int length, int match) {
             return p.expected_rate(origin(o), length, match);
           }, "origin"_a, "length"_a, "match"_a = 0)
      .def("best_length", [origin](const fsgen::DraftPlanner& p, int o, int max_length, double acceptance) {
             return p.best_length(origin(o), max_length, acceptance);
           }, "origin"_a, "max_length"_a, "acceptance"_a)
      .def("confidence_cutoff", &fsgen::DraftPlanner::confidence_cutoff, "length"_a)
      .def("acceptance", [origin](const fsgen::DraftPlanner& p, int o, int match) {
             return p.acceptance(origin(o), match);
           }, "origin"_a, "match"_a = 0)
      .def("verify_cost", &fsgen::DraftPlanner::verify_cost, "rows"_a)
      .def("draft_cost", [origin](const fsgen::DraftPlanner& p, int o) { return p.draft_cost(origin(o)); }, "origin"_a)
      .def("set_calibration",
           [](fsgen::DraftPlanner& p, const std::vector<double>& verify, double draft) {
             p.set_calibration(fsgen::CostCurve{verify, draft});
           },
           "verify"_a, "draft"_a)
      .def_prop_ro("calibration", [](const fsgen::DraftPlanner& p) {
        return std::make_pair(p.calibration().verify, p.calibration().draft);
      })
      .def_prop_ro("measured", [](const fsgen::DraftPlanner& p) {
        const fsgen::CostCurve c = p.measured();
        return std::make_pair(c.verify, c.draft);
      })
      .def_prop_ro("drifted", &fsgen::DraftPlanner::drifted)
      .def_prop_ro("rounds", &fsgen::DraftPlanner::rounds)
      .def_prop_ro("rejections", &fsgen::DraftPlanner::rejections)
      .def_prop_ro("probes", &fsgen::DraftPlanner::probes);

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
          return fsgen::make_generate_options(params, for_model ? fsgen::OptionsTarget::Model
                                                                : fsgen::OptionsTarget::Pair);
        },
        "params"_a, "for_model"_a = false);
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
  m.def("cancel_all_jobs", &fsgen::GenerationJob::cancel_all, "timeout"_a,
        nb::call_guard<nb::gil_scoped_release>());
  m.def("rpc_helper_path", &fsgen::rpc_helper_path);
  m.def("build_info", []() {
    const fsgen::BuildInfo b = fsgen::build_info();
    nb::dict d;
    d["version"] = b.version;
    d["llama_cpp_commit"] = b.llama_cpp_commit;
    d["backends"] = b.backends;
    d["cpu_features"] = b.cpu_features;
    d["system_info"] = b.system_info;
    d["rpc"] = b.rpc;
    return d;
  });
}
