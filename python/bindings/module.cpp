// fsgen._core: registration only. Types are converted, errors mapped once to fsgen.errors;
// no decoding logic lives here. Long calls release the GIL; generation runs on a
// GenerationJob's worker thread, so Python waits in short, interruptible slices.
#include "bindings.hpp"

NB_MODULE(_core, m) {
  m.doc() = "fsgen's C++ core (use the fsgen package, not this module)";
  using namespace fsgen_bindings;
  bind_errors(m);
  bind_params(m);
  bind_results(m);
  bind_model(m);
  bind_pair(m);
  bind_planner(m);
  bind_info(m);
}
