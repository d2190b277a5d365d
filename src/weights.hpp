// The loaded weights of one GGUF file, shared by every context (Session) made on it.
#pragma once
#include <memory>
#include <string>

#include "fsgen/model_info.hpp"
#include "fsgen/options.hpp"
#include "llama_handles.hpp"

namespace fsgen {

class Model;

struct Weights {
  ModelHandle model;
  const llama_vocab* vocab = nullptr;
  ModelInfo info;
};

// Validates the file first (never hand llama.cpp a file that would make it abort), then loads.
std::shared_ptr<const Weights> load_weights(const std::string& path, const ModelOptions& options);

// The weights behind a Model handle (throws if the model is closed).
std::shared_ptr<const Weights> model_weights(const Model& model);

// A new handle on the same weights, with its own context, lock and cancel flag: what a Pair
// holds, so that closing the Model the caller passed in does not pull the weights from under the
// pair (they are freed once both are closed).
Model model_view(const Model& model);

// Returns memory freed by closed contexts and models to the system (glibc keeps it otherwise).
void release_free_memory();

// Checks done before llama.cpp sees the file; throws ModelLoadError naming the problem.
void check_gguf_file(const std::string& path);

}  // namespace fsgen
