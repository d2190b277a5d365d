// fsgen: a small and a large language model decoding together on llama.cpp.
#pragma once
#include "fsgen/build_info.hpp"
#include "fsgen/draft_planner.hpp"
#include "fsgen/error.hpp"
#include "fsgen/job.hpp"
#include "fsgen/model.hpp"
#include "fsgen/options.hpp"
#include "fsgen/params.hpp"
#include "fsgen/pair.hpp"
#include "fsgen/plan.hpp"
#include "fsgen/remote.hpp"
#include "fsgen/result.hpp"
#include "fsgen/types.hpp"
