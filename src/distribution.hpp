// The math on next-token logits, apart from any loop: System 1's uncertainty, and the scores
// contrastive decoding and proxy tuning combine.
#pragma once
#include "fsgen/options.hpp"
#include "fsgen/types.hpp"

namespace fsgen {

Token argmax(const float* logits, int n);

// From the softmax of raw logits (temperature 1), in one pass over the vocabulary.
struct Uncertainty {
  float entropy = 0;  // nats
  float top1 = 0;     // p1
  float margin = 0;   // p1 - p2
  Token argmax = 0;
};
Uncertainty measure_uncertainty(const float* logits, int n);

// Contrastive decoding. Standard (O'Brien & Lewis 2023): (1+beta) log p_L - beta log p_S; FS-GEN's
// variant: logits_S + beta (logits_L - logits_S). Both only over the plausible tokens
// (p_L >= alpha max p_L); the rest get -infinity.
void contrastive_scores(const float* small, const float* large, int n, const ContrastiveOptions& options, float* out);

// Proxy tuning / emulated fine-tuning: logits_Lbase + alpha (logits_Stuned - logits_Sbase).
void proxy_scores(const float* large_base, const float* small_tuned, const float* small_base, int n, float alpha,
                  float* out);

}  // namespace fsgen
