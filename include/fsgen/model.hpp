// A loaded GGUF model: metadata, tokenization, chat template, and single-model generation.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fsgen/draft_planner.hpp"
#include "fsgen/job.hpp"
#include "fsgen/model_info.hpp"
#include "fsgen/options.hpp"
#include "fsgen/result.hpp"
#include "fsgen/types.hpp"

struct llama_vocab;

namespace fsgen {

class Model {
 public:
  // Loads the weights once; the handle is cheap to copy and shares them.
  static Model load(const std::string& path, const ModelOptions& options = {});

  const ModelInfo& info() const;
  const ModelOptions& options() const;

  // parse_special: "<|im_start|>" becomes its token. BOS is added when the model asks for it.
  std::vector<Token> tokenize(std::string_view text, bool parse_special = true) const;
  // Correct UTF-8 across token boundaries; special tokens are rendered.
  std::string detokenize(const std::vector<Token>& tokens) const;
  std::string piece(Token token) const;       // the bytes one token decodes to (maybe part of a character)
  bool is_eog(Token token) const;
  // The model's own (Jinja) chat template rendered for the messages; llama.cpp's built-in templates
  // are the fallback for a template its Jinja engine cannot run. add_assistant is the template's
  // add_generation_prompt; bos_token/eos_token are the vocabulary's. Throws TemplateError if the model
  // has no template, the template raises an exception (its message), or neither path renders it.
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_assistant = true) const;
  // The prompt as tokens (text, or messages through the chat template).
  std::vector<Token> prompt_tokens(const Prompt& prompt) const;

  // Throws what generate() would for this prompt and these options, without generating.
  void check(const Prompt& prompt, const GenerateOptions& options) const;
  // check(), then generate() on a worker thread; the job queues the chunks when `stream` (it holds
  // a handle on the model: closing the model cancels it).
  std::unique_ptr<GenerationJob> start(const Prompt& prompt, const GenerateOptions& options, bool stream);

  // Only Method::Small/Large-like single-model decoding; options.method is ignored.
  // stop: an optional flag of this call's own; set it (any thread) to end this call with
  // finish_reason "cancelled" at its next decode step, even while it still waits for the lock.
  Result generate(const Prompt& prompt, const GenerateOptions& options, const ChunkCallback& on_chunk = {},
                  const std::atomic<bool>* stop = nullptr);
  // Stops whatever this model's generate() is running at its next decode step.
  void cancel();
  // The planner of n-gram drafts (draft "ngram"): a copy; calibrate() measures this model's
  // verify costs by batch size; set_calibration() gives it a curve measured earlier.
  DraftPlanner planner() const;
  CostCurve calibrate();
  void set_calibration(const CostCurve& curve);
  // The cost table the next generation starts from, and giving it one (as Pair's).
  CostTable cost_table() const;
  void set_cost_table(const CostTable& table);
  // Frees the context and (once no Pair uses them) the weights.
  void close();
  bool closed() const;

  const llama_vocab* vocab() const;

  struct Impl;
  explicit Model(std::shared_ptr<Impl> impl);
  const std::shared_ptr<Impl>& impl() const { return impl_; }

 private:
  // generate() once the prompt and options are checked.
  Result run(const Prompt& prompt, const GenerateOptions& options, const ChunkCallback& on_chunk,
             const std::atomic<bool>* stop);
  std::shared_ptr<Impl> impl_;
};

}  // namespace fsgen
