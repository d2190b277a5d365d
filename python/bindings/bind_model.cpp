// fsgen._core.Model: a GGUF model loaded once, its tokenizer and chat template, and one-model
// generation started as a Job.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include "bindings.hpp"
#include "fsgen/job.hpp"
#include "fsgen/model.hpp"
#include "fsgen/remote.hpp"
#include "prompt.hpp"

namespace fsgen_bindings {

using namespace nb::literals;

void bind_model(nb::module_& m) {
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
             return model.apply_chat_template(chat_messages(messages), add);
           },
           "messages"_a, "add_assistant"_a = true)
      .def("check", [](const fsgen::Model& model, OptionalText text, OptionalMessages messages,
                       const fsgen::GenerateOptions& options) { model.check(make_prompt(text, messages), options); },
           "prompt"_a.none(), "messages"_a.none(), "options"_a,
           "Raises what start() would raise for this prompt and these options, without generating.")
      .def("start",
           [](fsgen::Model& model, OptionalText text, OptionalMessages messages, const fsgen::GenerateOptions& options,
              bool stream) { return model.start(make_prompt(text, messages), options, stream).release(); },
           "prompt"_a.none(), "messages"_a.none(), "options"_a, "stream"_a, nb::rv_policy::take_ownership)
      .def("cancel", &fsgen::Model::cancel)
      .def("planner", &fsgen::Model::planner, nb::call_guard<nb::gil_scoped_release>())
      .def("calibrate", [](fsgen::Model& m) {
             nb::gil_scoped_release release;
             const fsgen::CostCurve c = m.calibrate();
             return std::make_tuple(c.verify, c.draft, c.sampling, c.catch_up);
           })
      .def("cost_table", &fsgen::Model::cost_table, nb::call_guard<nb::gil_scoped_release>())
      .def("set_cost_table", &fsgen::Model::set_cost_table, "table"_a, nb::call_guard<nb::gil_scoped_release>())
      .def("set_calibration", [](fsgen::Model& m, const std::vector<double>& verify, double draft,
                                            double sampling, double catch_up) {
             m.set_calibration(fsgen::CostCurve{verify, draft, sampling, catch_up});
           }, "verify"_a, "draft"_a, "sampling"_a = -1.0, "catch_up"_a = -1.0)
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
}

}  // namespace fsgen_bindings
