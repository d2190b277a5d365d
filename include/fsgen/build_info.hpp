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
};

BuildInfo build_info();

}  // namespace fsgen
