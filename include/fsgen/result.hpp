// What a generation returns: text, tokens, statistics and the optional per-token trace.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fsgen/types.hpp"

namespace fsgen {

struct Stats {
  int n_prompt_tokens = 0;
  int n_prompt_cached = 0;  // prompt tokens found in the models' caches (not read again)
  int n_tokens = 0;
  double prompt_seconds = 0;
  double generation_seconds = 0;
  double seconds = 0;
  double tokens_per_second = 0;  // generation phase only
  int system2_calls = 0;         // times System 2 was run to choose tokens
  double system2_fraction = 0;   // share of tokens System 2 wrote (alone or combined)
  int mismatches = 0;            // tokens where System 1's own choice was overruled
  double mismatch_fraction = 0;
  int drafted = 0;               // speculative: draft tokens proposed
  int accepted = 0;              // speculative: draft tokens accepted
  int drafted_ngram = 0;         // of which n-gram drafts (looked up in the prompt and output)
  int accepted_ngram = 0;
  double acceptance_rate = 0;
  double mean_accepted_length = 0;  // accepted draft tokens per verify round
  int guard_tokens = 0;          // fs: tokens written while its guard handed over to speculative verification
  int vocab_translated = 0;      // 1: a pair whose tokenizers differ (drafts crossed between them)
  // Where the generation phase's time went (timings, never read by a decision): System 1's
  // decodes (steps, drafts, catch-ups), System 2's (the large model: reads and verifies; tokens
  // over decodes is its mean batch), and choosing tokens from logits.
  double system1_seconds = 0;
  int system1_decodes = 0;
  int system1_tokens = 0;
  double system2_seconds = 0;
  int system2_decodes = 0;
  int system2_tokens = 0;
  double sampling_seconds = 0;
  // The generation phase's decodes priced by the cost curve last calibrated (the built-in table
  // where none ran; System 1's steps and catch-ups, the large model's reads and verifies by rows,
  // a sampled row each): what they cost without the machine's noise, alike from one generation to
  // the next, to compare methods on a busy host (0: no table).
  double priced_seconds = 0;
};

// Stats by name, in declaration order: the one list the bindings (Python's stats dict and its
// Stats type) and the contract tests read. Each field is an int or a double member.
struct StatField {
  const char* name;
  int Stats::*whole = nullptr;
  double Stats::*real = nullptr;
};
const std::vector<StatField>& stat_fields();

// Per generated token (one row each); per draft round in `draft_*`.
struct Trace {
  std::vector<Token> token;
  std::vector<std::int8_t> source;      // Source values
  std::vector<float> entropy;           // System 1's next-token entropy (nats); NaN where it did not run
  std::vector<float> top1;              // System 1's top-1 probability
  std::vector<float> margin;            // p1 - p2
  std::vector<std::uint8_t> system2_called;
  std::vector<std::uint8_t> mismatch;   // false where not measured
  std::vector<std::int32_t> text_offset;  // character offset of the token's text in Result::text
  std::vector<std::int8_t> draft_source;  // 0 not a draft token, 1 System 1's draft, 2 an n-gram draft
  std::vector<std::int32_t> draft_length;    // draft tokens System 2 judged this round
  std::vector<std::int32_t> draft_accepted;  // of which it agreed with
  std::vector<std::int8_t> draft_round_source;  // 1 System 1, 2 n-gram
};

struct Result {
  std::string text;
  std::vector<Token> tokens;
  FinishReason finish_reason = FinishReason::Length;
  Stats stats;
  bool has_trace = false;
  Trace trace;
  // The id of the cost table (cost_table.hpp) this generation's decisions priced from.
  std::string cost_table;
};

// A piece of text as it is produced, with who wrote the token that completed it and, where that
// token was an accepted draft, who drafted it (that token's Trace::draft_source).
struct Chunk {
  std::string text;
  Source source = Source::System1;
  Token token = -1;
  DraftSource draft = DraftSource::None;  // None, Model (System 1's draft) or Ngram
};
// Return false to stop generating (finish_reason becomes Cancelled).
using ChunkCallback = std::function<bool(const Chunk&)>;

}  // namespace fsgen
