// The sampler alone: microseconds per token (distribution + draw) at Qwen2.5's vocabulary, the sorted
// reference (tests/cpp/sampling_reference.hpp) against fsgen::Sampler, on the tests' random logits.
//   cmake -S . -B build/cpp -DFSGEN_BUILD_PYTHON=OFF -DFSGEN_BUILD_BENCHMARKS=ON
//   cmake --build build/cpp --target sampling_bench && build/cpp/sampling_bench [seconds per row: 0.3]
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "distribution.hpp"
#include "sampling.hpp"
#include "sampling_reference.hpp"

namespace {

constexpr int kVocab = 151936;

struct Setting {
  const char* name;
  float temperature, top_p, min_p;
  int top_k;
};

// This thread's CPU time: on a shared machine, time waiting for a core is not the sampler's.
double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// CPU microseconds per call of f(logits) over rotating logit vectors: the best of 3 means, each
// over about seconds / 3 (other processes' bursts inflate a mean, never shrink it).
template <typename F>
double time_per_call(const std::vector<std::vector<float>>& logits, double seconds, F&& f) {
  for (const auto& l : logits) f(l.data());  // warm up
  double best = INFINITY;
  for (int round = 0; round < 3; ++round) {
    long calls = 0;
    const double start = cpu_seconds();
    double elapsed = 0;
    while (elapsed < seconds / 3) {
      for (const auto& l : logits) f(l.data());
      calls += static_cast<long>(logits.size());
      elapsed = cpu_seconds() - start;
    }
    best = std::min(best, elapsed / static_cast<double>(calls) * 1e6);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.3;
  const Setting settings[] = {
      {"greedy", 0.0f, 1.0f, 0.0f, 0},
      {"OpenAI defaults (T 1, top_k 0, top_p 1, min_p 0)", 1.0f, 1.0f, 0.0f, 0},
      {"chat (T 0.7, top_p 0.9, top_k 0)", 0.7f, 0.9f, 0.0f, 0},
      {"top_k 40 (T 1)", 1.0f, 1.0f, 0.0f, 40},
      {"fsgen defaults (T 1, top_k 40, top_p 0.95, min_p 0.05)", 1.0f, 0.95f, 0.05f, 40},
      {"min_p 0.05 (T 1, top_k 0)", 1.0f, 1.0f, 0.05f, 0},
      {"top_p 0.99 (T 1, top_k 0): flat keeps ~95% of V", 1.0f, 0.99f, 0.0f, 0},
  };
  std::printf("sampler per token, V=%d, CPU microseconds per call (best of 3 means over 8 rotating logit vectors)\n", kVocab);
  for (auto shape : {fsgen_test::Shape::Peaked, fsgen_test::Shape::Flat}) {
    std::vector<std::vector<float>> logits;
    for (unsigned seed = 1; seed <= 8; ++seed) logits.push_back(fsgen_test::random_logits(kVocab, shape, seed));
    std::printf("\nlogits: %s\n%-58s %9s %9s %8s\n", fsgen_test::kShapeNames[static_cast<int>(shape)], "setting",
                "sorted", "fsgen", "speedup");
    for (const Setting& s : settings) {
      fsgen::SamplingOptions o;
      o.temperature = s.temperature;
      o.top_k = s.top_k;
      o.top_p = s.top_p;
      o.min_p = s.min_p;
      fsgen_test::ReferenceSampler ref{o, {}, {}, {}};
      fsgen::Sampler sampler(o);
      volatile fsgen::Token sink = 0;
      const double old_us = time_per_call(logits, seconds, [&](const float* l) {
        if (o.greedy()) {
          sink = fsgen::argmax(l, kVocab);
          return;
        }
        ref.distribution(l, kVocab);
        sink = ref.draw(sampler.uniform());
      });
      const double new_us = time_per_call(logits, seconds, [&](const float* l) { sink = sampler.choose(l, kVocab); });
      std::printf("%-58s %9.1f %9.1f %7.1fx\n", s.name, old_us, new_us, old_us / new_us);
    }
  }
  return 0;
}
