// Turning logits into a token: greedy argmax, or a seeded draw from the distribution left after
// top-k, top-p and min-p (on the raw logits, in llama.cpp's order) and the temperature.
#pragma once
#include <random>
#include <vector>

#include "fsgen/options.hpp"
#include "fsgen/types.hpp"

namespace fsgen {

// A sparse distribution: the tokens that survived the filters, with probabilities summing to 1.
struct Candidates {
  std::vector<Token> ids;
  std::vector<float> p;
  float prob_of(Token t) const;
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

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};
  std::vector<std::pair<float, Token>> scratch_;
  Candidates candidates_;
};

}  // namespace fsgen
