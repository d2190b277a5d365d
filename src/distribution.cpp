#include "distribution.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace fsgen {
namespace {

// log sum exp and max, for log-probabilities.
void log_normalizer(const float* logits, int n, float& max_out, float& log_z_out) {
  float m = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < n; ++i) m = logits[i] > m ? logits[i] : m;
  double z = 0.0;
  for (int i = 0; i < n; ++i) z += std::exp(static_cast<double>(logits[i] - m));
  max_out = m;
  log_z_out = m + static_cast<float>(std::log(z));
}

// exp(x) for x <= 0, to about 3e-6 relative: 2^x by range reduction and a polynomial, plain
// float arithmetic that the compiler vectorizes (the libm call does not), since System 1's
// uncertainty is measured over the whole vocabulary at every step.
inline float exp_nonpositive(float x) {
  const float t = (x < -87.0f ? -87.0f : x) * 1.44269504f;  // log2(e); below -87 exp underflows
  const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 * 2^23), vectorizes
  const float f = t - n;  // [-0.5, 0.5]
  float p = 1.3333558e-3f;  // ln(2)^k / k!
  p = p * f + 9.6181291e-3f;
  p = p * f + 5.5504109e-2f;
  p = p * f + 2.4022651e-1f;
  p = p * f + 6.9314718e-1f;
  p = p * f + 1.0f;
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

}  // namespace

Token argmax(const float* logits, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

Uncertainty measure_uncertainty(const float* logits, int n) {
  int best = 0;
  float m1 = -std::numeric_limits<float>::infinity(), m2 = m1;
  for (int i = 0; i < n; ++i) {
    const float x = logits[i];
    if (x > m1) {
      m2 = m1;
      m1 = x;
      best = i;
    } else if (x > m2) {
      m2 = x;
    }
  }
  // H = log Z - sum_i p_i (x_i - m1), with Z = sum_i exp(x_i - m1). Float sums in 8 lanes
  // (vectorized), added up in double.
  constexpr int kLanes = 8;
  float z_lane[kLanes] = {}, w_lane[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float d = logits[i + l] - m1;
      const float e = exp_nonpositive(d);
      z_lane[l] += e;
      w_lane[l] += e * d;
    }
  }
  double z = 0.0, weighted = 0.0;
  for (; i < n; ++i) {
    const float d = logits[i] - m1;
    const float e = exp_nonpositive(d);
    z += e;
    weighted += double(e) * d;
  }
  for (int l = 0; l < kLanes; ++l) {
    z += z_lane[l];
    weighted += w_lane[l];
  }
  Uncertainty u;
  u.argmax = best;
  u.top1 = static_cast<float>(1.0 / z);
  u.margin = static_cast<float>((1.0 - std::exp(static_cast<double>(m2) - m1)) / z);
  u.entropy = static_cast<float>(std::log(z) - weighted / z);
  return u;
}

void contrastive_scores(const float* small, const float* large, int n, const ContrastiveOptions& options, float* out) {
  float large_max, large_log_z, small_max, small_log_z;
  log_normalizer(large, n, large_max, large_log_z);
  log_normalizer(small, n, small_max, small_log_z);
  const float cutoff = large_max + std::log(options.alpha);  // p_L >= alpha * max p_L
  const float beta = options.beta;
  const float minus_inf = -std::numeric_limits<float>::infinity();
  if (options.variant == ContrastiveVariant::Standard) {
    for (int i = 0; i < n; ++i) {
      out[i] = large[i] >= cutoff ? (1 + beta) * (large[i] - large_log_z) - beta * (small[i] - small_log_z) : minus_inf;
    }
  } else {
    for (int i = 0; i < n; ++i) {
      out[i] = large[i] >= cutoff ? small[i] + beta * (large[i] - small[i]) : minus_inf;
    }
  }
}

void proxy_scores(const float* large_base, const float* small_tuned, const float* small_base, int n, float alpha,
                  float* out) {
  for (int i = 0; i < n; ++i) out[i] = large_base[i] + alpha * (small_tuned[i] - small_base[i]);
}

}  // namespace fsgen
