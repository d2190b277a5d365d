// The generation driver and the interface every decoding method implements.
//
// A Strategy produces tokens for the sequence so far; the driver owns everything around that:
// end-of-generation tokens, max_tokens, the context limit, stop strings, cancellation, text and
// streaming, statistics and the trace. So a method file holds only its own loop.
#pragma once
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "fsgen/draft_planner.hpp"
#include "fsgen/model.hpp"
#include "fsgen/options.hpp"
#include "fsgen/result.hpp"
#include "sampling.hpp"
#include "text.hpp"

namespace fsgen {

struct CancelFlags;  // session.hpp
class Session;       // session.hpp

struct TokenRecord {
  Token token = 0;
  Source source = Source::System1;
  float entropy = std::numeric_limits<float>::quiet_NaN();  // System 1's, where it ran
  float top1 = std::numeric_limits<float>::quiet_NaN();
  float margin = std::numeric_limits<float>::quiet_NaN();
  bool system2_called = false;
  bool mismatch = false;
  DraftOrigin draft_origin = DraftOrigin::None;  // an accepted draft token: who proposed it
};

class Emitter {
 public:
  virtual ~Emitter() = default;
  // Prompt + tokens emitted so far.
  virtual const std::vector<Token>& sequence() const = 0;
  // Appends a token; false when generation must end (then emit nothing more).
  virtual bool emit(const TokenRecord& record) = 0;
  // How many more tokens may be emitted (max_tokens and the context both count).
  virtual size_t room() const = 0;
  // A speculative round: draft tokens judged, those accepted, and who drafted them.
  virtual void record_draft(int length, int accepted, DraftOrigin origin = DraftOrigin::Model) = 0;
  virtual void count_system2_call() = 0;
  // fs's guard: tokens written while the writing was handed over to speculative verification.
  virtual void count_guard_tokens(int n) = 0;
  virtual bool tracing() const = 0;
  virtual Sampler& sampler() = 0;
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  // Decode the prompt in the models this method needs from its first step (timed as prompt
  // processing); models needed only later catch up lazily.
  virtual void prefill(const std::vector<Token>& prompt) = 0;
  // Emit tokens, or hold text back (a translated pair's fs settles its text first): a step may
  // emit nothing, but a method emits (or stops) within a bounded number of steps.
  virtual void step(Emitter& out) = 0;
  // What the last step cost, priced by the generation's cost table (0 where not priced).
  virtual double last_step_cost() const { return 0; }
};

struct RunContext {
  const Model* text_model = nullptr;  // detokenizes and knows the end-of-generation tokens
  int n_ctx = 0;                      // the smallest context among the models used
  int n_vocab = 0;                    // ids a method may write: the text model's vocabulary
  const CancelFlags* cancel = nullptr;
  bool vocab_translated = false;      // a pair whose tokenizers differ (Stats::vocab_translated)
  // The sessions whose decodes the result's time breakdown counts (nullptr: none).
  const Session* system1 = nullptr;
  const Session* system2 = nullptr;
  // The cost table that prices the generation's decodes (Stats::priced_seconds; nullptr: none).
  const DraftPlanner* pricing = nullptr;
};

// The result of a call cancelled before it started (while it waited for the lock).
Result cancelled_before_start(const std::vector<Token>& prompt, const GenerateOptions& options);

Result run_generation(Strategy& strategy, const std::vector<Token>& prompt, const GenerateOptions& options,
                      const RunContext& context, const ChunkCallback& on_chunk);

}  // namespace fsgen
