#include "fsgen/cost_table.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace fsgen {

std::string CostTable::id() const {
  // FNV-1a over the costs as printed with round-trip precision: the same on every machine, and
  // the same for a table read back from its JSON.
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const char* s) {
    for (; *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ull;
  };
  char buf[40];
  for (size_t r = 1; r < verify.size(); ++r) {
    if (!(verify[r] > 0)) continue;
    std::snprintf(buf, sizeof buf, "%zu:%.17g;", r, verify[r]);
    mix(buf);
  }
  std::snprintf(buf, sizeof buf, "d:%.17g", draft > 0 ? draft : -1.0);
  mix(buf);
  if (sampling > 0) {
    std::snprintf(buf, sizeof buf, "s:%.17g", sampling);
    mix(buf);
  }
  if (catch_up > 0) {
    std::snprintf(buf, sizeof buf, "b:%.17g", catch_up);
    mix(buf);
  }
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>((h >> 32) ^ (h & 0xffffffffu)));
  return buf;
}

CostTable CostTable::builtin(double small_to_large) {
  constexpr double kSingle = 0.010, kPerRow = 0.1;
  constexpr int kRows = 16;
  CostTable t;
  t.kind = "builtin";
  t.verify.assign(kRows + 1, -1.0);
  for (int r = 1; r <= kRows; ++r) t.verify[r] = kSingle * (1 + kPerRow * (r - 1));
  t.draft = kSingle * std::clamp(small_to_large, 0.05, 1.0);
  return t;
}

}  // namespace fsgen
