#include "sampling.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <tuple>

#include "distribution.hpp"

namespace fsgen {
namespace {

using Entry = std::pair<float, Token>;

// Buckets of 1/32 nat of distance from the largest logit, up to 32 nats (a probability ratio of
// 1e-14), then one for the rest: narrow enough that the bucket a cut or a draw ends in is small.
constexpr int kBuckets = 1024;
constexpr float kPerNat = 32.0f;
// Sets up to this size are sorted whole: cheaper than bucketing them, and drawn in order.
constexpr size_t kSortMax = 1024;

int bucket_of(float top, float x) {
  const float g = (top - x) * kPerNat;  // monotone in x: equal logits share a bucket
  return g < static_cast<float>(kBuckets - 1) ? static_cast<int>(g) : kBuckets - 1;
}

bool before(const Entry& a, const Entry& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); }

// The largest of x (NaN ignored), in eight lanes so that the loop vectorizes.
float max_of(const float* x, size_t n) {
  float lanes[8];
  std::fill(lanes, lanes + 8, -INFINITY);
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (size_t j = 0; j < 8; ++j) lanes[j] = std::max(lanes[j], x[i + j]);
  for (; i < n; ++i) lanes[0] = std::max(lanes[0], x[i]);
  return *std::max_element(lanes, lanes + 8);
}

// exp(x) for x <= 0: within 2 ulp of std::exp above -708 (below, at most 2^-1021), and free of
// branches and calls so that the loops over the vocabulary vectorize.
inline double exp_nonpositive(double x) {
#if defined(__AVX2__) || defined(__aarch64__)
  const double k = std::nearbyint(x * 1.4426950408889634);  // x = k ln2 + r, |r| <= ln2 / 2
  const double r = (x - k * 0x1.62e42fee00000p-1) - k * 0x1.a39ef35793c76p-33;
  double p = 1.0 / 479001600.0;  // Taylor to r^12: error below 2^-53 for |r| <= ln2 / 2
  for (double c : {1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0,
                   1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0})
    p = p * r + c;
  const std::uint64_t bits = static_cast<std::uint64_t>(static_cast<int>(std::max(-1022.0, k)) + 1023) << 52;
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
#else
  return std::exp(x);  // a vector-free build: the call is cheaper than the polynomial
#endif
}

// w[i] = exp((x[i] - top) * scale) and their sum.
double exponentials(const float* x, size_t m, float top, double scale, double* w) {
  for (size_t i = 0; i < m; ++i) w[i] = exp_nonpositive((x[i] - top) * scale);
  double s[8] = {};  // eight running sums: the loop vectorizes
  size_t i = 0;
  for (; i + 8 <= m; i += 8)
    for (size_t j = 0; j < 8; ++j) s[j] += w[i + j];
  for (; i < m; ++i) s[0] += w[i];
  double total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  if (!std::isfinite(total)) {  // arguments past the polynomial's range (absurd logits or temperature)
    total = 0.0;
    for (i = 0; i < m; ++i) total += w[i] = std::exp((x[i] - top) * scale);
  }
  return total;
}

// The walk down the rank order that ends the kept set: min-p (p < min_p * p_max, p_max = 1/z) and
// top-p on the softmax of the raw logits of the candidates.
struct Walk {
  double z, floor, top_p, cumulative = 0.0;
  bool use_min, use_p;
  Walk(double z_, const SamplingOptions& o)
      : z(z_), floor(o.min_p * (1.0 / z_)), top_p(o.top_p), use_min(o.min_p > 0), use_p(o.top_p < 1.0f) {}
  // The number kept when the candidate at rank i ends the set, else 0.
  size_t step(float x, float top, size_t i) {
    const double p = exp_nonpositive(static_cast<double>(x - top)) / z;
    if (use_min && p < floor) return std::max<size_t>(1, i);
    cumulative += p;
    return use_p && cumulative >= top_p ? i + 1 : 0;
  }
};

}  // namespace

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {}

namespace {
// Adds the time until it goes out of scope to `total`.
class Timed {
 public:
  explicit Timed(double& total) : total_(total), start_(std::chrono::steady_clock::now()) {}
  ~Timed() { total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  double& total_;
  std::chrono::steady_clock::time_point start_;
};
}  // namespace

void Sampler::distribution(const float* logits, int n, Candidates& out) {
  const Timed timed(seconds_);
  out.ids.clear();
  out.p.clear();
  out.key.clear();
  if (out.dense_.size() != static_cast<size_t>(n)) out.dense_.assign(static_cast<size_t>(n), {});
  if (++out.stamp_ == 0) {  // wrapped: stale stamps could match again
    std::fill(out.dense_.begin(), out.dense_.end(), Candidates::Slot{});
    out.stamp_ = 1;
  }
  const bool nucleus = options_.top_p < 1.0f || options_.min_p > 0.0f;

  const int k = options_.top_k > 0 && options_.top_k < n ? options_.top_k : 0;  // 0: off
  float top;
  if (k > 0 && static_cast<size_t>(k) <= kSortMax) {
    select_top_k(logits, n, k);
    if (scratch_.empty()) return;
    top = std::max_element(scratch_.begin(), scratch_.end(), [](const Entry& a, const Entry& b) {
            return a.first < b.first;
          })->first;
  } else {
    top = max_of(logits, static_cast<size_t>(n));
    if (!(top > -INFINITY)) return;  // all masked
    // The finite logits apart from their ids (masked ones are rare, or come in runs).
    keys_.resize(static_cast<size_t>(n));
    ids_.resize(static_cast<size_t>(n));
    float* keys = keys_.data();
    Token* ids = ids_.data();
    size_t finite = 0;
    for (int i = 0; i < n; ++i) {
      if (!(logits[i] > -INFINITY)) continue;
      keys[finite] = logits[i];
      ids[finite++] = i;
    }
    keys_.resize(finite);
    ids_.resize(finite);
    if (k > 0 && static_cast<size_t>(k) < finite) keep_top(top, static_cast<size_t>(k));
    scratch_.clear();
    if (keys_.size() <= kSortMax)
      for (size_t i = 0; i < keys_.size(); ++i) scratch_.emplace_back(keys_[i], ids_[i]);
  }

  if (!scratch_.empty()) {  // few candidates: sorted, cut as they come
    std::sort(scratch_.begin(), scratch_.end(), before);
    if (nucleus) scratch_.resize(cut_sorted(top));
  } else if (nucleus) {
    cut(top);
    if (scratch_.empty() && keys_.size() <= kSortMax)
      for (size_t i = 0; i < keys_.size(); ++i) scratch_.emplace_back(keys_[i], ids_[i]);
    std::sort(scratch_.begin(), scratch_.end(), before);  // the nucleus is usually tens of tokens
  }
  if (scratch_.empty()) {  // many kept, or nothing cut: softmax in one pass, unsorted for the draw
    std::swap(out.ids, ids_);
    std::swap(out.key, keys_);
    return finish(top, out);
  }
  out.ids.resize(scratch_.size());
  out.key.resize(scratch_.size());
  for (size_t i = 0; i < scratch_.size(); ++i) std::tie(out.key[i], out.ids[i]) = scratch_[i];
  finish(top, out);
  out.key.clear();  // in rank order
}

// The k first in rank order (in no order; all finite when fewer), into scratch_, for a small k: one
// pass that keeps what beats the k-th best so far, selecting the k best whenever 2k are held.
void Sampler::select_top_k(const float* logits, int n, int k) {
  const size_t keep = static_cast<size_t>(k), hold = 2 * keep + 64;
  scratch_.clear();
  float bar = -INFINITY;  // a later equal logit ranks after the k-th: it never gets in
  for (int i = 0; i < n; ++i) {
    if (!(logits[i] > bar)) continue;
    scratch_.emplace_back(logits[i], i);
    if (scratch_.size() == hold) {
      std::nth_element(scratch_.begin(), scratch_.begin() + (k - 1), scratch_.end(), before);
      scratch_.resize(keep);
      bar = scratch_[keep - 1].first;
    }
  }
  if (scratch_.size() > keep) {
    std::nth_element(scratch_.begin(), scratch_.begin() + (k - 1), scratch_.end(), before);
    scratch_.resize(keep);
  }
}

// The k first in rank order among keys_ and ids_ (more than k), in place: whole buckets, then the
// best of the bucket holding the k-th.
void Sampler::keep_top(float top, size_t k) {
  const size_t m = keys_.size();
  bin(keys_.data(), m, top);
  count_.assign(kBuckets, 0);
  const int* bins = bins_.data();
  for (size_t i = 0; i < m; ++i) ++count_[bins[i]];
  int last = 0;  // the bucket holding the k-th
  for (size_t seen = 0; seen + static_cast<size_t>(count_[last]) < k; ++last)
    seen += static_cast<size_t>(count_[last]);
  float* keys = keys_.data();
  Token* ids = ids_.data();
  boundary_.clear();
  size_t w = 0;
  for (size_t i = 0; i < m; ++i) {
    if (bins[i] == last) boundary_.emplace_back(keys[i], ids[i]);
    keys[w] = keys[i];  // without a branch: a large k keeps a coin toss's share
    ids[w] = ids[i];
    w += bins[i] < last;
  }
  const size_t need = k - w;
  std::nth_element(boundary_.begin(), boundary_.begin() + static_cast<std::ptrdiff_t>(need - 1), boundary_.end(),
                   before);
  for (size_t j = 0; j < need; ++j) std::tie(keys[w + j], ids[w + j]) = boundary_[j];
  keys_.resize(k);
  ids_.resize(k);
}

size_t Sampler::cut_sorted(float top) {
  double z = 0.0;
  for (const auto& c : scratch_) z += exp_nonpositive(static_cast<double>(c.first - top));
  Walk walk(z, options_);
  for (size_t i = 0; i < scratch_.size(); ++i)
    if (const size_t keep = walk.step(scratch_[i].first, top, i)) return keep;
  return scratch_.size();
}

// The same cut on unsorted candidates (keys_, ids_): whole buckets while they surely stay (by their
// mass and distance from the top), the walk in rank order only through a bucket where the cut may
// fall. The kept set ends in scratch_ when small, else in place in keys_ and ids_.
void Sampler::cut(float top) {
  const size_t m = keys_.size();
  weights_.resize(m);
  const double z = exponentials(keys_.data(), m, top, 1.0, weights_.data());
  bin(keys_.data(), m, top);
  histogram(weights_.data(), m);
  Walk walk(z, options_);
  // Margins cover rounding: a bucket not surely on one side of a cut is walked.
  const double min_gap = walk.use_min ? -std::log(static_cast<double>(options_.min_p)) : INFINITY;
  const int* bins = bins_.data();
  size_t kept = 0;
  for (int b = 0; b < kBuckets; ++b) {
    if (count_[b] == 0) continue;
    const double near = b / static_cast<double>(kPerNat), far = (b + 1) / static_cast<double>(kPerNat);
    if (walk.use_min && kept > 0 && near > min_gap + 1e-6) return keep_buckets(b, 0);
    const bool pass_min = !walk.use_min || (b < kBuckets - 1 && far < min_gap - 1e-6);
    const double bucket_p = mass_[b] / z;
    if (pass_min && (!walk.use_p || walk.cumulative + bucket_p < walk.top_p - 1e-9)) {
      walk.cumulative += bucket_p;
      kept += static_cast<size_t>(count_[b]);
      continue;
    }
    // Bucket b into boundary_; where the kept set will be sorted (and so few: a branch seldom
    // taken), the buckets before it into scratch_ in the same pass.
    const bool few = kept + static_cast<size_t>(count_[b]) <= kSortMax;
    boundary_.clear();
    scratch_.clear();
    for (size_t i = 0; few && i < m; ++i) {
      if (bins[i] == b) boundary_.emplace_back(keys_[i], ids_[i]);
      else if (bins[i] < b) scratch_.emplace_back(keys_[i], ids_[i]);
    }
    for (size_t i = 0; !few && i < m; ++i)
      if (bins[i] == b) boundary_.emplace_back(keys_[i], ids_[i]);
    std::sort(boundary_.begin(), boundary_.end(), before);  // ranks `kept` on
    for (size_t j = 0; j < boundary_.size(); ++j) {
      const size_t keep = walk.step(boundary_[j].first, top, kept + j);
      if (keep == 0) continue;
      if (!few) return keep_buckets(b, keep - kept);
      scratch_.insert(scratch_.end(), boundary_.begin(), boundary_.begin() + static_cast<std::ptrdiff_t>(keep - kept));
      return;
    }
    kept += boundary_.size();
    scratch_.clear();
  }
}

// Keeps the buckets before b and the first `partial` of bucket b (boundary_, in rank order).
void Sampler::keep_buckets(int b, size_t partial) {
  const size_t m = keys_.size();
  const int* bins = bins_.data();
  float* keys = keys_.data();
  Token* ids = ids_.data();
  size_t w = 0, expected = 0;
  for (int c = 0; c < b; ++c) expected += static_cast<size_t>(count_[c]);
  if (expected * 16 < m) {  // few: a branch seldom taken
    for (size_t i = 0; i < m; ++i)
      if (bins[i] < b) {
        keys[w] = keys[i];
        ids[w++] = ids[i];
      }
  } else {  // many (a wide nucleus): whether one stays is a coin toss, so no branch
    for (size_t i = 0; i < m; ++i) {
      keys[w] = keys[i];
      ids[w] = ids[i];
      w += bins[i] < b;
    }
  }
  keys_.resize(w + partial);
  ids_.resize(w + partial);
  for (size_t j = 0; j < partial; ++j) std::tie(keys_[w + j], ids_[w + j]) = boundary_[j];
}

void Sampler::bin(const float* x, size_t m, float top) {
  bins_.resize(m);
  int* bins = bins_.data();
  for (size_t i = 0; i < m; ++i) bins[i] = bucket_of(top, x[i]);
}

template <typename T>
void Sampler::histogram(const T* weight, size_t m) {
  mass_.assign(kBuckets, 0.0);
  count_.assign(kBuckets, 0);
  double* mass = mass_.data();
  int* count = count_.data();
  const int* bins = bins_.data();
  for (size_t i = 0; i < m; ++i) {
    mass[bins[i]] += weight[i];
    ++count[bins[i]];
  }
}

// p from out.key (the logits of out.ids) at the temperature, normalised; indexed by token id.
void Sampler::finish(float top, Candidates& out) {
  const double inv_t = options_.temperature > 0 ? 1.0 / options_.temperature : 1.0;
  const size_t m = out.ids.size();
  weights_.resize(m);
  const double zt = exponentials(out.key.data(), m, top, inv_t, weights_.data());
  out.p.resize(m);
  float* p = out.p.data();
  const double* w = weights_.data();
  for (size_t i = 0; i < m; ++i) p[i] = static_cast<float>(static_cast<float>(w[i]) / zt);
  Candidates::Slot* dense = out.dense_.data();
  const Token* ids = out.ids.data();
  for (size_t i = 0; i < m; ++i) dense[ids[i]] = {out.stamp_, p[i]};
}

Token Sampler::draw(const Candidates& c) {
  const Timed timed(seconds_);
  if (!c.key.empty()) return draw_unsorted(c);
  double r = uniform();
  for (size_t i = 0; i < c.ids.size(); ++i) {
    r -= c.p[i];
    if (r < 0) return c.ids[i];
  }
  return c.ids.empty() ? 0 : c.ids.back();
}

// The walk in rank order without sorting: bucket masses find the bucket where the walk ends,
// then only that bucket is sorted.
Token Sampler::draw_unsorted(const Candidates& c) {
  const size_t m = c.key.size();
  bin(c.key.data(), m, max_of(c.key.data(), m));
  histogram(c.p.data(), m);
  double r = uniform();
  int chosen = 0;
  bool found = false;
  for (int b = 0; b < kBuckets && !found; ++b) {
    if (count_[b] == 0) continue;
    chosen = b;
    if (r < mass_[b]) found = true;
    else r -= mass_[b];
  }
  if (!found) r = INFINITY;  // rounding carried r past the total: the last candidate, as a walk would
  if (picks_.size() < m) picks_.resize(m);
  size_t w = 0;
  for (size_t j = 0; j < m; ++j)
    if (bins_[j] == chosen) picks_[w++] = static_cast<std::uint32_t>(j);  // one bucket: seldom
  const auto picks = picks_.begin(), picks_end = picks_.begin() + static_cast<std::ptrdiff_t>(w);
  std::sort(picks, picks_end, [&](std::uint32_t a, std::uint32_t b) {
    return before({c.key[a], c.ids[a]}, {c.key[b], c.ids[b]});
  });
  for (auto j = picks; j != picks_end; ++j) {
    r -= c.p[*j];
    if (r < 0) return c.ids[*j];
  }
  return c.ids[*(picks_end - 1)];
}

Token Sampler::choose(const float* logits, int n) {
  if (greedy()) {
    const Timed timed(seconds_);
    return argmax(logits, n);
  }
  distribution(logits, n, candidates_);
  return draw(candidates_);
}

}  // namespace fsgen
