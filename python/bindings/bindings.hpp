// fsgen._core's registration functions, one per concept, and the conversions they share.
// Registration and conversion only: no decoding logic lives in the bindings.
#pragma once
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <vector>

namespace fsgen_bindings {

namespace nb = nanobind;

// A numpy array that owns a moved-in vector (flags come as uint8; Python views them as bool).
template <typename T>
nb::object to_numpy(std::vector<T>&& values) {
  auto* owned = new std::vector<T>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::cast(nb::ndarray<nb::numpy, T, nb::ndim<1>>(owned->data(), {owned->size()}, owner));
}

void bind_errors(nb::module_& m);
void bind_params(nb::module_& m);   // the parameter table, options, the call plan, the routers' rule
void bind_results(nb::module_& m);  // Result, Chunk, Job, stats
void bind_model(nb::module_& m);
void bind_pair(nb::module_& m);
void bind_planner(nb::module_& m);  // DraftPlanner, draft sources
void bind_info(nb::module_& m);     // build info, RPC helper, jobs

}  // namespace fsgen_bindings
