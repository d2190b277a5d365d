// Options for loading models and for generating. Defaults follow ../shared/API.md.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fsgen/types.hpp"

namespace fsgen {

struct ModelOptions {
  int n_ctx = 4096;         // context length of each context fsgen creates on this model
  int n_threads = 0;        // 0: fsgen picks (physical cores, at most 8)
  int n_gpu_layers = 0;     // layers offloaded to a GPU backend (-1: all)
  int n_batch = 512;        // logical and physical batch size
  bool verbose = false;     // forward llama.cpp's log to stderr
  int flash_attn = -1;      // -1: llama.cpp decides (auto), 0: off, 1: on
  // Host memory for the sequence states a context moved away from (per context), so that a
  // prompt seen before is restored instead of read again; 0: off.
  int prompt_cache_mib = 256;
  // Remote devices ("host:port" of `fsgen rpc-server`s): the model runs there, from a helper
  // process this one owns (n_gpu_layers 0 then means all layers). rpc_timeout: seconds a remote
  // call may go without progress (each n_batch chunk of an eval) before it fails with GenerationError.
  std::vector<std::string> rpc;
  double rpc_timeout = 60.0;
};

struct SamplingOptions {
  float temperature = 0.0f;  // 0: greedy; top_k/top_p/min_p only apply when sampling
  int top_k = 40;            // <= 0: off
  float top_p = 0.95f;       // 1: off
  float min_p = 0.05f;       // 0: off
  std::uint64_t seed = 0;
  bool greedy() const { return temperature <= 0.0f; }
  // Temperature and top_p alone, no top_k or min_p: how OpenAI's dialect samples.
  static SamplingOptions untruncated(float temperature, float top_p = 1.0f) {
    SamplingOptions options;
    options.temperature = temperature;
    options.top_k = 0;
    options.top_p = top_p;
    options.min_p = 0.0f;
    return options;
  }
};

// Defaults, ranges and where each option applies: the parameter table (fsgen/params.hpp).
struct SpeculativeOptions {
  // Where drafts come from. Speculative: Auto; one model (small/large, Model::generate): None
  // (no drafting) or Ngram.
  DraftSource draft = DraftSource::Auto;
  int draft_max = 0;         // 0: cost-aware adaptive; > 0: fixed draft length
  float draft_p_min = 0.0f;  // stop a draft when System 1's top-1 probability falls below this
  int adaptive_max = 16;     // longest draft the adaptive mode considers
  // A pair whose tokenizers differ: how System 1's drafts cross into the large model's
  // vocabulary (Auto: each round the one whose drafts have been accepted more). Ignored where the
  // vocabularies are the same.
  CrossVocab cross_vocab = CrossVocab::Auto;
};

struct ContrastiveOptions {
  float alpha = 0.1f;  // plausibility: keep tokens with p_L >= alpha * max p_L
  float beta = 0.5f;
  ContrastiveVariant variant = ContrastiveVariant::Standard;
};

struct ProxyOptions {
  float alpha = 1.0f;  // logits_Lbase + alpha * (logits_Stuned - logits_Sbase)
};

struct RouterOptions {
  Router router = Router::Entropy;
  std::optional<float> threshold;  // unset: the router's own default
  float system2_share = 0.1f;      // Router::Budget: the share of tokens System 2 is consulted on
  // fs with System 2 = the large model: while System 2 is consulted on most tokens, hand the
  // writing over to speculative verification (Stats::guard_tokens counts what it wrote).
  bool guard = true;
  float effective_threshold() const;
  // The routers' one rule, for a value of the router's feature (System 1's entropy for entropy
  // and budget, top-1 probability for top1, p1 - p2 for margin): entropy consults strictly above
  // the threshold, top1 and margin strictly below it. The study's thresholds use it too.
  bool consults(float value) const;
};

struct GenerateOptions {
  Method method = Method::Speculative;
  int max_tokens = 256;
  SamplingOptions sampling;
  std::vector<std::string> stop;  // stop strings; may span tokens
  bool trace = false;
  SpeculativeOptions speculative;
  ContrastiveOptions contrastive;
  ProxyOptions proxy;
  RouterOptions router;
  System2Kind system2 = System2Kind::Large;

  // Throws InvalidArgumentError naming the first bad field (ranges from the parameter table).
  void validate() const;
};

// A prompt is plain text or chat messages (the chat template is applied).
struct ChatMessage {
  std::string role;
  std::string content;
};
struct Prompt {
  std::optional<std::string> text;
  std::vector<ChatMessage> messages;
  static Prompt from_text(std::string t) { Prompt p; p.text = std::move(t); return p; }
  static Prompt from_messages(std::vector<ChatMessage> m) { Prompt p; p.messages = std::move(m); return p; }
  // Throws InvalidArgumentError unless exactly one of text and messages is given, and not empty.
  void check() const;
};

}  // namespace fsgen
