// What a generation gives back: Result (its stats by the core's list of fields, its trace as
// numpy arrays), streamed Chunks, and the Job that runs a generation on a worker thread.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.hpp"
#include "fsgen/job.hpp"
#include "fsgen/result.hpp"

namespace fsgen_bindings {
namespace {

using namespace nb::literals;

nb::dict stats_dict(const fsgen::Stats& s) {
  nb::dict d;
  for (const fsgen::StatField& f : fsgen::stat_fields()) {
    if (f.whole != nullptr) d[f.name] = s.*f.whole;
    else d[f.name] = s.*f.real;
  }
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

}  // namespace

void bind_results(nb::module_& m) {
  m.def("stat_fields", [] {
    nb::list out;
    for (const fsgen::StatField& f : fsgen::stat_fields()) out.append(nb::make_tuple(f.name, f.whole ? "int" : "float"));
    return out;
  }, "The statistics' names and types, in order: (name, \"int\" | \"float\").");
  m.def("sources", [] {
    nb::dict d;
    d["system1"] = static_cast<int>(fsgen::Source::System1);
    d["system2"] = static_cast<int>(fsgen::Source::System2);
    d["combined"] = static_cast<int>(fsgen::Source::Combined);
    return d;
  }, "Who writes a token: name -> value (Trace.source, Chunk.source).");
  m.def("draft_sources", [] {
    nb::dict d;
    for (fsgen::DraftSource s : {fsgen::DraftSource::None, fsgen::DraftSource::Model, fsgen::DraftSource::Ngram,
                                 fsgen::DraftSource::Auto})
      d[fsgen::to_string(s)] = static_cast<int>(s);
    return d;
  }, "Where drafts come from: name -> value (Trace.draft_source, the planner's origins).");

  nb::class_<fsgen::Result>(m, "Result")
      .def_ro("text", &fsgen::Result::text)
      .def_ro("tokens", &fsgen::Result::tokens)
      .def_prop_ro("finish_reason", [](const fsgen::Result& r) { return std::string(fsgen::to_string(r.finish_reason)); })
      .def_prop_ro("stats", [](const fsgen::Result& r) { return stats_dict(r.stats); })
      .def_ro("has_trace", &fsgen::Result::has_trace)
      .def_ro("cost_table", &fsgen::Result::cost_table)
      .def("take_trace", [](fsgen::Result& r) { return trace_dict(std::move(r.trace)); });

  nb::class_<fsgen::Chunk>(m, "Chunk")
      .def_ro("text", &fsgen::Chunk::text)
      .def_prop_ro("source", [](const fsgen::Chunk& c) { return static_cast<int>(c.source); })
      .def_ro("token", &fsgen::Chunk::token)
      .def_prop_ro("draft", [](const fsgen::Chunk& c) { return static_cast<int>(c.draft); });

  nb::class_<fsgen::GenerationJob>(m, "Job")
      .def("next_chunk", &fsgen::GenerationJob::next_chunk, "timeout"_a, nb::call_guard<nb::gil_scoped_release>())
      .def("wait", &fsgen::GenerationJob::wait, "timeout"_a, nb::call_guard<nb::gil_scoped_release>())
      .def("done", &fsgen::GenerationJob::done)
      .def("cancel", &fsgen::GenerationJob::cancel, nb::call_guard<nb::gil_scoped_release>())
      .def("take_result", &fsgen::GenerationJob::take_result, nb::call_guard<nb::gil_scoped_release>());
  m.def("cancel_all_jobs", &fsgen::GenerationJob::cancel_all, "timeout"_a,
        nb::call_guard<nb::gil_scoped_release>());
}

}  // namespace fsgen_bindings
