// The draft planner: returned by Pair.planner(), and constructible so that tests can drive it
// with injected costs. Draft origins are fsgen.DraftSource values (1 System 1's drafts, 2 n-gram).
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.hpp"
#include "fsgen/draft_planner.hpp"

namespace fsgen_bindings {

using namespace nb::literals;

void bind_planner(nb::module_& m) {
  nb::class_<fsgen::CostTable>(m, "CostTable")
      .def("__init__",
           [](fsgen::CostTable* t, const std::vector<double>& verify, double draft, const std::string& kind,
              double sampling, double catch_up) {
             new (t) fsgen::CostTable{verify, draft, kind, sampling, catch_up};
           },
           "verify"_a, "draft"_a, "kind"_a = "pinned", "sampling"_a = -1.0, "catch_up"_a = -1.0)
      .def_static("builtin", &fsgen::CostTable::builtin, "small_to_large"_a)
      .def_ro("verify", &fsgen::CostTable::verify)
      .def_ro("draft", &fsgen::CostTable::draft)
      .def_ro("kind", &fsgen::CostTable::kind)
      .def_ro("sampling", &fsgen::CostTable::sampling)
      .def_ro("catch_up", &fsgen::CostTable::catch_up)
      .def_prop_ro("id", &fsgen::CostTable::id);

  auto origin = [](int o) { return static_cast<fsgen::DraftSource>(o); };
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
           [](fsgen::DraftPlanner& p, const std::vector<double>& verify, double draft, double sampling,
              double catch_up) { p.set_calibration(fsgen::CostCurve{verify, draft, sampling, catch_up}); },
           "verify"_a, "draft"_a, "sampling"_a = -1.0, "catch_up"_a = -1.0)
      .def_prop_ro("calibration", [](const fsgen::DraftPlanner& p) {
        return std::make_pair(p.calibration().verify, p.calibration().draft);
      })
      .def_prop_ro("measured", [](const fsgen::DraftPlanner& p) {
        const fsgen::CostCurve c = p.measured();
        return std::make_pair(c.verify, c.draft);
      })
      .def_static("for_generation",
                  [](const fsgen::CostTable& table, float temperature, float top_p) {
                    return fsgen::DraftPlanner::for_generation(
                        table, fsgen::SamplingOptions::untruncated(temperature, top_p));
                  },
                  "table"_a, "temperature"_a = 0.0f, "top_p"_a = 1.0f)
      .def_prop_ro("sampling_cost", &fsgen::DraftPlanner::sampling_cost)
      .def("lossless_token_cost", &fsgen::DraftPlanner::lossless_token_cost, "acceptance"_a, "max_length"_a = 8)
      .def_prop_ro("table", &fsgen::DraftPlanner::table)
      .def("set_table", &fsgen::DraftPlanner::set_table, "table"_a)
      .def("fold", &fsgen::DraftPlanner::fold, "generation"_a)
      .def_prop_ro("drifted", &fsgen::DraftPlanner::drifted)
      .def_prop_ro("rounds", &fsgen::DraftPlanner::rounds)
      .def_prop_ro("rejections", &fsgen::DraftPlanner::rejections)
      .def_prop_ro("probes", &fsgen::DraftPlanner::probes);
}

}  // namespace fsgen_bindings
