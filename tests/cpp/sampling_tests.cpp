// fsgen::Sampler against the sorted reference (sampling_reference.hpp) on random logits with ties
// and masked tokens: the same candidates in the same rank order, the same probabilities, the same
// seeded draws, and prob_of by token id. No models needed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "sampling.hpp"
#include "sampling_reference.hpp"

namespace {

using fsgen_test::check;
using fsgen_test::kShapeNames;
using fsgen_test::random_logits;
using fsgen_test::Shape;

std::string describe(const fsgen::SamplingOptions& o, int n, const char* shape) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "V=%d %s T=%g top_k=%d top_p=%g min_p=%g", n, shape, o.temperature, o.top_k,
                o.top_p, o.min_p);
  return buf;
}

// The candidates in their draw order: as listed, or by key (descending, then ascending id).
std::vector<size_t> draw_order(const fsgen::Candidates& c) {
  std::vector<size_t> order(c.ids.size());
  std::iota(order.begin(), order.end(), size_t{0});
  if (!c.key.empty())
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return c.key[a] > c.key[b] || (c.key[a] == c.key[b] && c.ids[a] < c.ids[b]);
    });
  return order;
}

// Candidates, order, probabilities (1e-6), keys, prob_of; then seeded draws.
bool matches(const std::vector<float>& logits, const fsgen::SamplingOptions& options, std::string& why) {
  const int n = static_cast<int>(logits.size());
  fsgen_test::ReferenceSampler ref{options, {}, {}, {}};
  ref.distribution(logits.data(), n);
  fsgen::Sampler sampler(options);
  fsgen::Candidates c;
  sampler.distribution(logits.data(), n, c);
  if (c.ids.size() != ref.ids.size() || c.p.size() != c.ids.size() ||
      (!c.key.empty() && c.key.size() != c.ids.size())) {
    why = "size " + std::to_string(c.ids.size()) + " vs " + std::to_string(ref.ids.size());
    return false;
  }
  const std::vector<size_t> order = draw_order(c);
  for (size_t i = 0; i < order.size(); ++i) {
    const size_t j = order[i];
    if (c.ids[j] != ref.ids[i] || std::fabs(c.p[j] - ref.p[i]) > 1e-6f || c.prob_of(c.ids[j]) != c.p[j] ||
        (!c.key.empty() && c.key[j] != logits[static_cast<size_t>(c.ids[j])])) {
      why = "rank " + std::to_string(i) + ": id " + std::to_string(c.ids[j]) + " vs " + std::to_string(ref.ids[i]);
      return false;
    }
  }
  size_t nonzero = 0, expected = 0;
  for (int t = 0; t < n; ++t) nonzero += c.prob_of(t) != 0.0f;
  for (float p : c.p) expected += p != 0.0f;
  if (nonzero != expected || c.prob_of(-1) != 0.0f || c.prob_of(n) != 0.0f) {
    why = "prob_of outside the candidates";
    return false;
  }
  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  for (int d = 0; d < 16; ++d) {
    const fsgen::Token a = sampler.draw(c), b = ref.draw(uniform(rng));
    if (a != b) {
      why = "draw " + std::to_string(d) + ": " + std::to_string(a) + " vs " + std::to_string(b);
      return false;
    }
  }
  return true;
}

void test_against_reference() {
  const int sizes[] = {8, 33, 1000, 1025, 4096, 40000, 151936};
  const float temperatures[] = {0.3f, 0.7f, 1.0f, 1.5f};
  const float top_ps[] = {0.5f, 0.9f, 0.95f, 1.0f};
  const float min_ps[] = {0.0f, 0.05f, 0.2f};
  unsigned seed = 1;
  for (int n : sizes) {
    const int top_ks[] = {0, 1, 5, 40, 3000, n};  // 3000: past the sorted-set size (1024)
    for (int s = 0; s < 3; ++s) {
      const std::vector<float> logits = random_logits(n, static_cast<Shape>(s), seed++);
      int failures = 0, cases = 0;
      std::string first;
      for (int top_k : top_ks)
        for (float top_p : top_ps)
          for (float min_p : min_ps)
            for (float t : temperatures) {
              fsgen::SamplingOptions o;
              o.temperature = t;
              o.top_k = top_k;
              o.top_p = top_p;
              o.min_p = min_p;
              o.seed = seed++;
              std::string why;
              ++cases;
              if (!matches(logits, o, why) && failures++ == 0) first = describe(o, n, kShapeNames[s]) + ": " + why;
            }
      check(failures == 0, "V=" + std::to_string(n) + " " + kShapeNames[s] + ": " + std::to_string(failures) + "/" +
                               std::to_string(cases) + " differ from the reference; first: " + first);
    }
  }
}

void test_edge_cases() {
  fsgen::SamplingOptions o;
  o.temperature = 1.0f;
  o.top_k = 0;
  o.top_p = 0.9f;
  o.min_p = 0.0f;
  std::string why;
  for (int n : {8, 5000}) {
    check(matches(std::vector<float>(static_cast<size_t>(n), 0.5f), o, why),
          "all logits equal, V=" + std::to_string(n) + ": " + why);
    std::vector<float> one(static_cast<size_t>(n), -INFINITY);
    one[3] = 2.0f;
    check(matches(one, o, why), "one finite logit: " + why);
    fsgen::Sampler s(o);
    fsgen::Candidates c;
    s.distribution(std::vector<float>(static_cast<size_t>(n), -INFINITY).data(), n, c);
    check(c.ids.empty() && c.prob_of(3) == 0.0f && s.draw(c) == 0, "all masked: empty");
  }
  o.min_p = 1.5f;  // even the top token is below: the reference keeps one
  check(matches(random_logits(5000, Shape::Ties, 7), o, why), "min_p > 1: " + why);
  o.min_p = 0.0f;
  o.top_p = 0.0f;
  check(matches(random_logits(5000, Shape::Ties, 8), o, why), "top_p 0: " + why);
}

// A reused Candidates forgets the previous distribution's tokens.
void test_prob_of_is_fresh() {
  fsgen::SamplingOptions o;
  o.temperature = 1.0f;
  o.top_k = 5;
  o.top_p = 1.0f;
  o.min_p = 0.0f;
  fsgen::Sampler s(o);
  fsgen::Candidates c;
  const std::vector<float> a = random_logits(3000, Shape::Peaked, 11), b = random_logits(3000, Shape::Peaked, 12);
  s.distribution(a.data(), 3000, c);
  const std::vector<fsgen::Token> before = c.ids;
  s.distribution(b.data(), 3000, c);
  bool fresh = true;
  for (fsgen::Token t : before)
    if (std::find(c.ids.begin(), c.ids.end(), t) == c.ids.end()) fresh = fresh && c.prob_of(t) == 0.0f;
  check(fresh, "prob_of forgets the previous distribution");
}

// Keyed candidates whose probabilities do not follow their keys (a speculative residual) are drawn
// in key order: the same tokens as a walk over them sorted.
void test_keyed_draw() {
  for (int n : {50, 3000}) {
    std::mt19937 rng(static_cast<unsigned>(n));
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    fsgen::Candidates c;
    const std::vector<float> logits = random_logits(n, Shape::Ties, 21);
    double total = 0;
    for (int t = n - 1; t >= 0; --t) {  // listed backwards
      if (!(logits[static_cast<size_t>(t)] > -INFINITY)) continue;
      c.ids.push_back(t);
      c.key.push_back(logits[static_cast<size_t>(t)]);
      c.p.push_back(unit(rng) < 0.3f ? 0.0f : unit(rng));
      total += c.p.back();
    }
    for (auto& p : c.p) p = static_cast<float>(p / total);
    fsgen_test::ReferenceSampler ref;
    for (size_t j : draw_order(c)) {
      ref.ids.push_back(c.ids[j]);
      ref.p.push_back(c.p[j]);
    }
    fsgen::SamplingOptions o;
    o.temperature = 1.0f;
    o.seed = 5;
    fsgen::Sampler s(o);
    std::mt19937_64 ref_rng(o.seed);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    int same = 0;
    for (int d = 0; d < 2000; ++d) same += s.draw(c) == ref.draw(uniform(ref_rng));
    check(same == 2000, "keyed draw follows the key order, V=" + std::to_string(n) + ": " + std::to_string(same) +
                            "/2000");
  }
}

}  // namespace

int main() {
  test_edge_cases();
  test_prob_of_is_fresh();
  test_keyed_draw();
  test_against_reference();
  return fsgen_test::report();
}
