// fsgen._core.Pair: System 1 and System 2 over loaded Models, generation started as a Job.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.hpp"
#include "fsgen/pair.hpp"
#include "prompt.hpp"

namespace fsgen_bindings {

using namespace nb::literals;

void bind_pair(nb::module_& m) {
  nb::class_<fsgen::Pair>(m, "Pair")
      .def("__init__",
           [](fsgen::Pair* self, const fsgen::Model& small, const fsgen::Model& large,
              std::optional<fsgen::Model> small_base, const fsgen::ModelOptions& options) {
             new (self) fsgen::Pair(small, large, small_base, options);
           },
           "small"_a, "large"_a, "small_base"_a.none(), "options"_a, nb::call_guard<nb::gil_scoped_release>())
      .def("check", [](const fsgen::Pair& pair, OptionalText text, OptionalMessages messages,
                       const fsgen::GenerateOptions& options) { pair.check(make_prompt(text, messages), options); },
           "prompt"_a.none(), "messages"_a.none(), "options"_a,
           "Raises what start() would raise for this prompt and these options, without generating.")
      .def("start",
           [](fsgen::Pair& pair, OptionalText text, OptionalMessages messages, const fsgen::GenerateOptions& options,
              bool stream) { return pair.start(make_prompt(text, messages), options, stream).release(); },
           "prompt"_a.none(), "messages"_a.none(), "options"_a, "stream"_a, nb::keep_alive<0, 1>(),
           nb::rv_policy::take_ownership)
      .def_prop_ro("vocab", [](const fsgen::Pair& pair) {
             const fsgen::VocabMatch v = pair.vocab();
             nb::dict d;
             d["kind"] = v.translated ? "translated" : "shared";
             d["overlap"] = v.overlap;
             d["shared_tokens"] = v.shared_tokens;
             return d;
           })
      .def("apply_chat_template",
           [](const fsgen::Pair& pair, const std::vector<std::pair<std::string, std::string>>& messages, bool add) {
             return pair.apply_chat_template(chat_messages(messages), add);
           },
           "messages"_a, "add_assistant"_a = true)
      .def("cancel", &fsgen::Pair::cancel)
      .def("close", &fsgen::Pair::close, nb::call_guard<nb::gil_scoped_release>())
      .def_prop_ro("large_lost", &fsgen::Pair::large_lost)
      .def("reload_large", &fsgen::Pair::reload_large, nb::call_guard<nb::gil_scoped_release>())
      .def("planner", &fsgen::Pair::planner, nb::call_guard<nb::gil_scoped_release>())
      .def("calibrate", [](fsgen::Pair& p, bool drafter) {
             nb::gil_scoped_release release;
             const fsgen::CostCurve c = p.calibrate(drafter);
             return std::make_tuple(c.verify, c.draft, c.sampling, c.catch_up);
           }, "drafter"_a = true)
      .def("cost_table", &fsgen::Pair::cost_table, nb::call_guard<nb::gil_scoped_release>())
      .def("set_cost_table", &fsgen::Pair::set_cost_table, "table"_a, nb::call_guard<nb::gil_scoped_release>())
      .def("set_calibration", [](fsgen::Pair& p, const std::vector<double>& verify, double draft,
                                           double sampling, double catch_up) {
             p.set_calibration(fsgen::CostCurve{verify, draft, sampling, catch_up});
           }, "verify"_a, "draft"_a, "sampling"_a = -1.0, "catch_up"_a = -1.0);
}

}  // namespace fsgen_bindings
