// A small and a large model (and optionally the small model's base, for proxy tuning) that share
// one vocabulary, decoding together. Every per-token loop runs here, in C++.
#pragma once
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fsgen/draft_planner.hpp"
#include "fsgen/job.hpp"
#include "fsgen/model.hpp"
#include "fsgen/options.hpp"
#include "fsgen/result.hpp"

namespace fsgen {

// How a pair's vocabularies relate. Shared: one vocabulary (check_vocab_compatible passes), every
// method works. Translated: the tokenizers differ; speculative drafts cross between them, fs and
// oracle (System 2 = the large model) meet in text, small and large work; contrastive and proxy
// (which combine the models' scores token by token) do not. overlap and shared_tokens count the tokens both hold (the same
// decoded bytes): shared / (|small| + |large| - shared).
struct VocabMatch {
  bool translated = false;
  double overlap = 1.0;
  int shared_tokens = 0;
};

class Pair {
 public:
  // Any two models: a pair whose vocabularies differ is translated (vocab()). The small model's
  // base (proxy tuning) must share System 1's vocabulary (IncompatibleVocabError otherwise).
  // Passing the same Model twice is fine: each role gets its own context on one set of weights.
  Pair(Model small, Model large, std::optional<Model> small_base = std::nullopt,
       const ModelOptions& context_options = {});
  ~Pair();
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;

  const Model& small() const;
  const Model& large() const;
  const std::optional<Model>& small_base() const;
  VocabMatch vocab() const;
  // Each model's own chat template for the messages ("small", "large"): a translated pair's models
  // read their own renderings; the large model's decides the output.
  std::pair<std::string, std::string> apply_chat_template(const std::vector<ChatMessage>& messages,
                                                          bool add_assistant = true) const;

  // Prompts go through the large model's chat template (one shared tokenization; a translated
  // pair's System 1 reads its own, and the small method writes after System 1's).
  // stop: an optional flag of this call's own; set it (any thread) to end this call with
  // finish_reason "cancelled" at its next decode step, even while it still waits for the lock.
  Result generate(const Prompt& prompt, const GenerateOptions& options, const ChunkCallback& on_chunk = {},
                  const std::atomic<bool>* stop = nullptr);
  // Throws what generate() would for this prompt and these options, without generating.
  void check(const Prompt& prompt, const GenerateOptions& options) const;
  // check(), then generate() on a worker thread; the job queues the chunks when `stream`. The
  // pair must outlive the job.
  std::unique_ptr<GenerationJob> start(const Prompt& prompt, const GenerateOptions& options, bool stream);
  void cancel();
  void close();

  // A large model on RPC servers (ModelOptions::rpc) is lost when a call to it failed (server
  // gone, link stalled past rpc_timeout): System 2 then fails with GenerationError while System 1
  // keeps working, until reload_large() loads it again (ModelLoadError if the server is still away).
  bool large_lost() const;
  void reload_large();
  // What the speculative draft planner has learnt (costs, acceptance): a copy, taken between
  // generations.
  DraftPlanner planner() const;
  // Measures the large model's verify cost for each batch size (and, with drafter, a System 1
  // step) on this machine now: a few seconds on billion-parameter models. The planner starts
  // from the result; set_calibration gives it a curve measured earlier (e.g. cached).
  CostCurve calibrate(bool drafter = true);
  void set_calibration(const CostCurve& curve);
  // The large model's cost table the next generation starts from (cost_table.hpp), and giving
  // it one: a "pinned" or "builtin" table is used as given by every later generation, a
  // "measured" one as set_calibration. (System 1 verifying its own n-gram drafts, method "small",
  // prices from the built-in table.)
  CostTable cost_table() const;
  void set_cost_table(const CostTable& table);

 private:
  // generate() once the prompt and options are checked.
  Result run(const Prompt& prompt, const GenerateOptions& options, const ChunkCallback& on_chunk,
             const std::atomic<bool>* stop);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Throws IncompatibleVocabError naming the first difference (the check llama.cpp's
// speculative decoding makes: vocab type, BOS/EOS handling, sizes within 128, same token text).
void check_vocab_compatible(const Model& a, const Model& b);

}  // namespace fsgen
