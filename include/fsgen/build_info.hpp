#pragma once
#include <map>
#include <string>
#include <vector>

namespace fsgen {

struct BuildInfo {
  std::string version;
  std::string llama_cpp_commit;
  std::vector<std::string> backends;          // registered ggml backends ("CPU", "Metal", ...)
  std::map<std::string, std::string> cpu_features;  // features compiled into the CPU backend
  std::string system_info;                    // llama_print_system_info(): features in use
  bool rpc = false;                           // llama.cpp's RPC backend is built in (remote models)
};

BuildInfo build_info();

// fsgen-rpc, the executable behind `fsgen rpc-server` and remote models: $FSGEN_RPC_HELPER, else
// beside llama.cpp's shared library.
std::string rpc_helper_path();

}  // namespace fsgen
