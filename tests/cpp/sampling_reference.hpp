// The sorted sampler that fsgen::Sampler must match (the tests) and beat (the benchmark): a bounded
// heap of the top k over the whole vocabulary (all of it when top_k is off), sorted, then min-p and
// top-p walking it in rank order, then the temperature. Rank order: descending logit, equal logits
// by ascending id. top_p = 1 is off (a walk to 1 could otherwise end early on rounding).
// Also the random logits both use.
#pragma once
#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "fsgen/options.hpp"
#include "fsgen/types.hpp"

namespace fsgen_test {

struct ReferenceSampler {
  fsgen::SamplingOptions options;
  std::vector<std::pair<float, fsgen::Token>> scratch;
  std::vector<fsgen::Token> ids;  // in rank order
  std::vector<float> p;

  void distribution(const float* logits, int n) {
    const int k = options.top_k > 0 ? std::min(options.top_k, n) : n;
    auto greater = [](const std::pair<float, fsgen::Token>& a, const std::pair<float, fsgen::Token>& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    scratch.clear();
    for (int i = 0; i < n; ++i) {
      const float x = logits[i];
      if (!(x > -INFINITY)) continue;
      if (static_cast<int>(scratch.size()) < k) {
        scratch.emplace_back(x, i);
        std::push_heap(scratch.begin(), scratch.end(), greater);
      } else if (greater({x, i}, scratch.front())) {
        std::pop_heap(scratch.begin(), scratch.end(), greater);
        scratch.back() = {x, i};
        std::push_heap(scratch.begin(), scratch.end(), greater);
      }
    }
    std::sort_heap(scratch.begin(), scratch.end(), greater);
    ids.clear();
    p.clear();
    if (scratch.empty()) return;

    const float top = scratch.front().first;
    double z = 0.0;
    for (const auto& c : scratch) z += std::exp(static_cast<double>(c.first - top));
    size_t keep = scratch.size();
    double cumulative = 0.0;
    for (size_t i = 0; i < scratch.size(); ++i) {
      const double pi = std::exp(static_cast<double>(scratch[i].first - top)) / z;
      if (options.min_p > 0 && pi < options.min_p * (1.0 / z)) {
        keep = std::max<size_t>(1, i);
        break;
      }
      cumulative += pi;
      if (options.top_p < 1.0f && cumulative >= options.top_p) {
        keep = i + 1;
        break;
      }
    }
    const double inv_t = options.temperature > 0 ? 1.0 / options.temperature : 1.0;
    double zt = 0.0;
    for (size_t i = 0; i < keep; ++i) {
      const double w = std::exp((scratch[i].first - top) * inv_t);
      ids.push_back(scratch[i].second);
      p.push_back(static_cast<float>(w));
      zt += w;
    }
    for (auto& x : p) x = static_cast<float>(x / zt);
  }

  // The token a uniform r in [0, 1) picks.
  fsgen::Token draw(double r) const {
    for (size_t i = 0; i < ids.size(); ++i) {
      r -= p[i];
      if (r < 0) return ids[i];
    }
    return ids.empty() ? 0 : ids.back();
  }
};

enum class Shape { Peaked, Flat, Ties };
inline const char* const kShapeNames[] = {"peaked", "flat", "ties"};

// Peaked: a bulk of N(0, 2.5) and a few tokens well above it, as language models give. Flat: N(0, 1),
// the widest nucleus. Ties: peaked, rounded to halves (runs of equal logits everywhere, the top
// included). About 3% masked (-inf).
inline std::vector<float> random_logits(int n, Shape shape, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> bulk(0.0f, shape == Shape::Flat ? 1.0f : 2.5f);
  std::uniform_int_distribution<int> pick(0, n - 1);
  std::uniform_real_distribution<float> lift(6.0f, 14.0f), unit(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = bulk(rng);
  if (shape != Shape::Flat)
    for (int i = 0; i < 1 + n / 8000; ++i) x[static_cast<size_t>(pick(rng))] += lift(rng);
  if (shape == Shape::Ties)
    for (auto& v : x) v = std::round(v * 2.0f) / 2.0f;
  for (auto& v : x)
    if (unit(rng) < 0.03f) v = -INFINITY;
  x[static_cast<size_t>(pick(rng))] = 1.0f;  // at least one finite
  return x;
}

}  // namespace fsgen_test
