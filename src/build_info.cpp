#include "fsgen/build_info.hpp"

#include "ggml-backend.h"
#include "llama.h"
#include "logging.hpp"
#include "rpc/remote_model.hpp"

namespace fsgen {

BuildInfo build_info() {
  logging::install_once();
  BuildInfo info;
  info.version = FSGEN_VERSION;
  info.llama_cpp_commit = FSGEN_LLAMA_CPP_COMMIT;
  for (size_t i = 0; i < ggml_backend_reg_count(); ++i) {
    ggml_backend_reg_t reg = ggml_backend_reg_get(i);
    info.backends.push_back(ggml_backend_reg_name(reg));
    using GetFeatures = ggml_backend_feature* (*)(ggml_backend_reg_t);
    auto get_features = reinterpret_cast<GetFeatures>(ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features"));
    if (get_features && info.backends.back() == "CPU") {
      for (ggml_backend_feature* f = get_features(reg); f && f->name; ++f) info.cpu_features[f->name] = f->value;
    }
  }
  info.system_info = llama_print_system_info();
  info.rpc = ggml_backend_reg_by_name("RPC") != nullptr;
  return info;
}

std::string rpc_helper_path() { return rpc::RemoteModel::helper_path(); }

}  // namespace fsgen
