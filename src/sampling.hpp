// Turning logits into a token: greedy argmax, or a seeded draw from the distribution left after
// top-k, top-p and min-p (on the raw logits, in llama.cpp's order) and the temperature.
//
// Order and ties: candidates rank by descending logit, equal logits by ascending token id; every
// cut-off (top-k, top-p, min-p) keeps a prefix of that order, and the draw walks it.
//
// Cost: O(vocabulary) passes and no sort of the vocabulary. Logits fall into buckets by their
// distance from the largest; the cuts and the draw sort only the bucket they end in.
#pragma once
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "fsgen/options.hpp"
#include "fsgen/types.hpp"

namespace fsgen {

// A sparse distribution: the tokens that survived the filters, with probabilities summing to 1.
struct Candidates {
  std::vector<Token> ids;
  std::vector<float> p;
  // Empty: ids are in draw order. Otherwise each entry's logit, ids in any order: large sets stay
  // unsorted and the draw finds its token by the order above.
  std::vector<float> key;

  // O(1): what Sampler::distribution last wrote here, by token id (0 for any other token).
  float prob_of(Token t) const {
    const size_t i = static_cast<size_t>(t);
    return i < dense_.size() && dense_[i].stamp == stamp_ ? dense_[i].p : 0.0f;
  }

 private:
  friend class Sampler;
  // Stamped rather than cleared: a new distribution costs only the tokens it keeps.
  struct Slot {
    std::uint32_t stamp = 0;
    float p = 0.0f;
  };
  std::vector<Slot> dense_;
  std::uint32_t stamp_ = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);
  bool greedy() const { return options_.greedy(); }

  void distribution(const float* logits, int n, Candidates& out);
  Token draw(const Candidates& c);
  double uniform() { return uniform_(rng_); }
  // Greedy argmax, or distribution + draw.
  Token choose(const float* logits, int n);
  // Seconds spent choosing tokens (argmaxes, distributions, draws): a timing for the result's
  // breakdown, never for a decision.
  double seconds() const { return seconds_; }

 private:
  void select_top_k(const float* logits, int n, int k);
  void keep_top(float top, size_t k);
  size_t cut_sorted(float top);
  void cut(float top);
  void keep_buckets(int bucket, size_t partial);
  void bin(const float* x, size_t m, float top);  // bins_[i]: x[i]'s bucket
  template <typename T>
  void histogram(const T* weight, size_t m);  // mass_ and count_ by bins_
  void finish(float top, Candidates& out);
  Token draw_unsorted(const Candidates& c);

  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};
  std::vector<std::pair<float, Token>> scratch_, boundary_;  // (logit, id)
  std::vector<float> keys_;  // many candidates: logits and ids apart
  std::vector<Token> ids_;
  std::vector<double> weights_, mass_;
  std::vector<int> bins_, count_;
  std::vector<std::uint32_t> picks_;  // a draw's bucket (sized >= all candidates)
  Candidates candidates_;
  double seconds_ = 0;
};

}  // namespace fsgen
