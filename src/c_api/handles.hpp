// What the C API's opaque handles hold, and the guard every entry point runs its body in: it
// turns each typed exception into its status code and keeps the message for the calling thread.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "fsgen.h"
#include "fsgen/error.hpp"
#include "fsgen/job.hpp"
#include "fsgen/model.hpp"
#include "fsgen/pair.hpp"
#include "fsgen/params.hpp"

struct fsgen_model {
  fsgen::Model model;
};

// Shared: a stream keeps its pair alive (a job must not outlive the Pair it runs on).
struct fsgen_pair {
  std::shared_ptr<fsgen::Pair> pair;
};

struct fsgen_options {
  fsgen_options_kind kind;
  fsgen::ParamMap params;
};

struct fsgen_result {
  fsgen::Result result;
};

struct fsgen_stream {
  std::shared_ptr<fsgen::Pair> pair;   // declared before the job: destroyed after it
  std::optional<fsgen::Model> model;
  std::unique_ptr<fsgen::GenerationJob> job;
  fsgen::Chunk piece;                  // the latest piece (its bytes are handed out)
  std::optional<fsgen::Result> result;
  fsgen_status error = FSGEN_OK;       // the failure, repeated on later calls
  std::string error_message;
};

namespace fsgen_c {

// Records the message for fsgen_last_error_message() and returns the status.
fsgen_status fail(fsgen_status status, const char* message) noexcept;
fsgen_status status_of_current_exception() noexcept;

template <typename F>
fsgen_status guard(F&& body) noexcept {
  try {
    return body();
  } catch (...) {
    return status_of_current_exception();
  }
}

template <typename T>
T& require(T* handle, const char* what) {
  if (handle == nullptr) throw fsgen::InvalidArgumentError(std::string(what) + " is NULL");
  return *handle;
}

// The prompt from the C arguments (text, or roles and contents).
fsgen::Prompt make_prompt(const char* prompt, const char* const* roles, const char* const* contents, size_t n);
fsgen::ModelOptions model_options(const fsgen_options* options);
fsgen::GenerateOptions generate_options(const fsgen_options* options, fsgen::OptionsTarget target);

}  // namespace fsgen_c
