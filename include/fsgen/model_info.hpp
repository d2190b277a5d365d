// What a loaded GGUF model is: its metadata, read once at load.
#pragma once
#include <cstdint>
#include <string>

namespace fsgen {

struct ModelInfo {
  std::string path;
  std::string architecture;   // general.architecture
  std::string name;           // general.name, else the file name
  std::string description;    // llama.cpp's one-line description
  std::uint64_t n_params = 0;
  std::uint64_t size_bytes = 0;
  int file_type = -1;         // general.file_type (llama_ftype), -1 if absent
  int n_vocab = 0;
  int n_layer = 0;
  int n_embd = 0;
  int n_ctx_train = 0;
  std::string chat_template;  // empty if the model has none
};

}  // namespace fsgen
