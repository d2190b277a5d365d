// The routers' rule: whether fs consults System 2 at a step, from System 1's uncertainty there.
// (The budget router adapts its threshold per generation: budget_router.hpp.)
#pragma once
#include "distribution.hpp"
#include "fsgen/options.hpp"

namespace fsgen {

// True when the router sends this step to System 2 (RouterOptions::consults on its feature).
bool router_consults(const RouterOptions& router, const Uncertainty& u);

}  // namespace fsgen
