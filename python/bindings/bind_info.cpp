// What this build is: version, llama.cpp commit, backends, CPU features; where the RPC helper is.
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.hpp"
#include "fsgen/build_info.hpp"
#include "fsgen/remote.hpp"

namespace fsgen_bindings {

void bind_info(nb::module_& m) {
  m.def("rpc_helper_path", &fsgen::rpc_helper_path);
  m.def("build_info", []() {
    const fsgen::BuildInfo b = fsgen::build_info();
    nb::dict d;
    d["version"] = b.version;
    d["llama_cpp_commit"] = b.llama_cpp_commit;
    d["backends"] = b.backends;
    d["cpu_features"] = b.cpu_features;
    d["system_info"] = b.system_info;
    d["rpc"] = b.rpc;
    return d;
  });
}

}  // namespace fsgen_bindings
