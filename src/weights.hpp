// The loaded weights of one GGUF file, shared by every context (Session) made on it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "fsgen/model_info.hpp"
#include "fsgen/options.hpp"
#include "llama_handles.hpp"

namespace fsgen {


class Model;

// A checked prompt as tokens: its text, or its messages through the model's chat template.
std::vector<Token> render_prompt(const Model& model, const Prompt& prompt);
namespace rpc { class RemoteModel; }

struct Weights {
  ModelHandle model;  // for a remote model: the vocabulary only (tokenizing, templates, metadata)
  const llama_vocab* vocab = nullptr;
  ModelInfo info;
  std::shared_ptr<rpc::RemoteModel> remote;  // set when options.rpc names servers
};

// What only fsgen's RPC helper passes: the devices to load onto (null-terminated) and a progress
// callback (its heartbeat while the weights travel to the servers).
struct LoadExtras {
  ggml_backend_dev_t* devices = nullptr;
  llama_progress_callback progress = nullptr;
};

// Validates the file first (never hand llama.cpp a file that would make it abort), then loads.
// With options.rpc: probes the servers, loads the vocabulary here and the model in a helper process.
std::shared_ptr<const Weights> load_weights(const std::string& path, const ModelOptions& options,
                                            const LoadExtras& extras = {});

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
