#include "sampling.hpp"

#include <algorithm>
#include <cmath>

#include "distribution.hpp"

namespace fsgen {

float Candidates::prob_of(Token t) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == t) return p[i];
  return 0.0f;
}

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {}

void Sampler::distribution(const float* logits, int n, Candidates& out) {
  // top-k: keep the k largest finite logits, sorted descending. A bounded min-heap costs one
  // comparison per token for small k.
  const int k = options_.top_k > 0 ? std::min(options_.top_k, n) : n;
  auto greater = [](const std::pair<float, Token>& a, const std::pair<float, Token>& b) { return a.first > b.first; };
  scratch_.clear();
  for (int i = 0; i < n; ++i) {
    const float x = logits[i];
    if (!(x > -INFINITY)) continue;  // masked out
    if (static_cast<int>(scratch_.size()) < k) {
      scratch_.emplace_back(x, i);
      std::push_heap(scratch_.begin(), scratch_.end(), greater);
    } else if (x > scratch_.front().first) {
      std::pop_heap(scratch_.begin(), scratch_.end(), greater);
      scratch_.back() = {x, i};
      std::push_heap(scratch_.begin(), scratch_.end(), greater);
    }
  }
  std::sort_heap(scratch_.begin(), scratch_.end(), greater);  // descending
  out.ids.clear();
  out.p.clear();
  if (scratch_.empty()) return;

  // top-p and min-p on the softmax of the raw logits of the survivors.
  const float top = scratch_.front().first;
  double z = 0.0;
  for (const auto& c : scratch_) z += std::exp(static_cast<double>(c.first - top));
  size_t keep = scratch_.size();
  double cumulative = 0.0;
  for (size_t i = 0; i < scratch_.size(); ++i) {
    const double p = std::exp(static_cast<double>(scratch_[i].first - top)) / z;
    if (options_.min_p > 0 && p < options_.min_p * (1.0 / z)) {  // p_max = 1/z
      keep = std::max<size_t>(1, i);
      break;
    }
    cumulative += p;
    if (cumulative >= options_.top_p) {
      keep = i + 1;
      break;
    }
  }
  // temperature
  const double inv_t = options_.temperature > 0 ? 1.0 / options_.temperature : 1.0;
  double zt = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    const double w = std::exp((scratch_[i].first - top) * inv_t);
    out.ids.push_back(scratch_[i].second);
    out.p.push_back(static_cast<float>(w));
    zt += w;
  }
  for (auto& p : out.p) p = static_cast<float>(p / zt);
}

Token Sampler::draw(const Candidates& c) {
  double r = uniform();
  for (size_t i = 0; i < c.ids.size(); ++i) {
    r -= c.p[i];
    if (r < 0) return c.ids[i];
  }
  return c.ids.empty() ? 0 : c.ids.back();
}

Token Sampler::choose(const float* logits, int n) {
  if (greedy()) return argmax(logits, n);
  distribution(logits, n, candidates_);
  return draw(candidates_);
}

}  // namespace fsgen
