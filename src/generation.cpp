#include "generation.hpp"

#include <algorithm>
#include <chrono>

#include "fsgen/error.hpp"
#include "session.hpp"

namespace fsgen {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kMaxIdleSteps = 1024;  // a method holding text back emits long before this

class Driver final : public Emitter {
 public:
  Driver(const std::vector<Token>& prompt, const GenerateOptions& options, const RunContext& context,
         const ChunkCallback& on_chunk)
      : options_(options), context_(context), on_chunk_(on_chunk), sampler_(options.sampling),
        text_(options.stop), sequence_(prompt) {
    result_.stats.n_prompt_tokens = static_cast<int>(prompt.size());
    result_.stats.vocab_translated = context.vocab_translated ? 1 : 0;
    result_.has_trace = options.trace;
  }

  const std::vector<Token>& sequence() const override { return sequence_; }
  Sampler& sampler() override { return sampler_; }
  bool tracing() const override { return options_.trace; }
  void count_system2_call() override { ++result_.stats.system2_calls; }
  void count_guard_tokens(int n) override { result_.stats.guard_tokens += n; }

  size_t room() const override {
    if (finished_) return 0;
    const size_t by_tokens = static_cast<size_t>(options_.max_tokens) - result_.tokens.size();
    const size_t by_context = static_cast<size_t>(context_.n_ctx) - std::min(sequence_.size(), size_t(context_.n_ctx));
    return std::min(by_tokens, by_context);
  }

  void record_draft(int length, int accepted, DraftOrigin origin) override {
    result_.stats.drafted += length;
    result_.stats.accepted += accepted;
    if (origin == DraftOrigin::Ngram) {
      result_.stats.drafted_ngram += length;
      result_.stats.accepted_ngram += accepted;
    }
    ++rounds_;
    if (options_.trace) {
      result_.trace.draft_length.push_back(length);
      result_.trace.draft_accepted.push_back(accepted);
      result_.trace.draft_round_source.push_back(static_cast<std::int8_t>(origin));
    }
  }

  bool emit(const TokenRecord& r) override {
    if (finished_) return false;
    if (r.token < 0 || r.token >= context_.n_vocab) throw GenerationError("a method produced an invalid token id");
    if (context_.text_model->is_eog(r.token)) return finish(FinishReason::Eog);
    const int offset = text_.char_count();
    const std::string released = text_.add(context_.text_model->piece(r.token));
    sequence_.push_back(r.token);
    result_.tokens.push_back(r.token);
    last_ = r;
    if (r.source != Source::System1) ++system2_tokens_;
    if (r.mismatch) ++result_.stats.mismatches;
    if (options_.trace) {
      auto& t = result_.trace;
      t.token.push_back(r.token);
      t.source.push_back(static_cast<std::int8_t>(r.source));
      t.entropy.push_back(r.entropy);
      t.top1.push_back(r.top1);
      t.margin.push_back(r.margin);
      t.system2_called.push_back(r.system2_called);
      t.mismatch.push_back(r.mismatch);
      t.text_offset.push_back(offset);
      t.draft_source.push_back(static_cast<std::int8_t>(r.draft_origin));
    }
    if (!released.empty()) send({released, r.source, r.token, r.draft_origin});
    if (text_.stopped()) return finish(FinishReason::Stop);
    if (room() == 0) return finish(FinishReason::Length);
    return !finished_;
  }

  Result run(Strategy& strategy) {
    const auto start = Clock::now();
    auto generation_start = start;
    at_generation_start_ = {totals(context_.system1), totals(context_.system2), sampler_.seconds()};
    try {
      if (options_.max_tokens == 0 || room() == 0) {
        finish(FinishReason::Length);
      } else {
        strategy.prefill(sequence_);
        generation_start = Clock::now();
        const auto before_prefill = at_generation_start_;
        at_generation_start_ = {totals(context_.system1), totals(context_.system2), sampler_.seconds()};
        const int read = std::max(at_generation_start_.system1.tokens - before_prefill.system1.tokens,
                                  at_generation_start_.system2.tokens - before_prefill.system2.tokens);
        result_.stats.n_prompt_cached = std::max(0, result_.stats.n_prompt_tokens - read);
        int idle = 0;  // steps in a row that emitted nothing
        while (!finished_) {
          if (cancelled()) {
            finish(FinishReason::Cancelled);
            break;
          }
          const size_t before = result_.tokens.size();
          strategy.step(*this);
          idle = result_.tokens.size() == before ? idle + 1 : 0;
          if (!finished_ && idle > kMaxIdleSteps) {
            throw GenerationError("internal error: decoding steps produced no token");
          }
        }
      }
    } catch (const Cancelled&) {
      finished_ = true;
      result_.finish_reason = FinishReason::Cancelled;
    }
    if (generation_start == start) generation_start = Clock::now();
    const std::string tail = text_.finish();
    // What was held back (a possible stop string's start, an unfinished character) ends with the
    // last token written: the chunk names it and who wrote it, as any other chunk.
    if (!tail.empty() && !result_.tokens.empty()) send({tail, last_.source, last_.token, last_.draft_origin});
    const auto end = Clock::now();
    result_.text = text_.text();
    // Tokens cut off by a stop string start at the end of the text.
    for (auto& offset : result_.trace.text_offset) offset = std::min(offset, text_.char_count());
    finalize_stats(std::chrono::duration<double>(generation_start - start).count(),
                   std::chrono::duration<double>(end - generation_start).count());
    return std::move(result_);
  }

 private:
  bool cancelled() const { return context_.cancel != nullptr && context_.cancel->requested(); }

  bool finish(FinishReason reason) {
    if (!finished_) {
      finished_ = true;
      result_.finish_reason = reason;
    }
    return false;
  }

  void send(const Chunk& chunk) {
    if (on_chunk_ && !on_chunk_(chunk)) finish(FinishReason::Cancelled);
  }

  static Session::DecodeTotals totals(const Session* session) { return session ? session->totals() : Session::DecodeTotals{}; }

  // The generation phase's decodes and sampling, from the totals when it started.
  void count_breakdown() {
    auto& s = result_.stats;
    const Session::DecodeTotals one = totals(context_.system1), two = totals(context_.system2);
    s.system1_seconds = one.seconds - at_generation_start_.system1.seconds;
    s.system1_decodes = one.decodes - at_generation_start_.system1.decodes;
    s.system1_tokens = one.tokens - at_generation_start_.system1.tokens;
    s.system2_seconds = two.seconds - at_generation_start_.system2.seconds;
    s.system2_decodes = two.decodes - at_generation_start_.system2.decodes;
    s.system2_tokens = two.tokens - at_generation_start_.system2.tokens;
    s.sampling_seconds = sampler_.seconds() - at_generation_start_.sampling;
    if (context_.pricing != nullptr) {
      const DraftPlanner& table = *context_.pricing;
      s.priced_seconds = priced(one, at_generation_start_.system1, [&](int n) { return table.system1_cost(n); }) +
                         priced(two, at_generation_start_.system2, [&](int n) { return table.system2_cost(n); });
    }
  }

  // The decodes since `start`, each priced by its number of tokens.
  template <class Price>
  static double priced(const Session::DecodeTotals& now, const Session::DecodeTotals& start, Price price) {
    double total = 0;
    for (size_t n = 1; n < now.by_tokens.size(); ++n) {
      const int decodes = now.by_tokens[n] - (n < start.by_tokens.size() ? start.by_tokens[n] : 0);
      if (decodes > 0) total += decodes * price(static_cast<int>(n));
    }
    return total;
  }

  void finalize_stats(double prompt_seconds, double generation_seconds) {
    count_breakdown();
    auto& s = result_.stats;
    s.n_tokens = static_cast<int>(result_.tokens.size());
    s.prompt_seconds = prompt_seconds;
    s.generation_seconds = generation_seconds;
    s.seconds = prompt_seconds + generation_seconds;
    s.tokens_per_second = generation_seconds > 0 ? s.n_tokens / generation_seconds : 0.0;
    s.system2_fraction = s.n_tokens > 0 ? double(system2_tokens_) / s.n_tokens : 0.0;
    s.mismatch_fraction = s.n_tokens > 0 ? double(s.mismatches) / s.n_tokens : 0.0;
    s.acceptance_rate = s.drafted > 0 ? double(s.accepted) / s.drafted : 0.0;
    s.mean_accepted_length = rounds_ > 0 ? double(s.accepted) / rounds_ : 0.0;
  }

  const GenerateOptions& options_;
  const RunContext& context_;
  const ChunkCallback& on_chunk_;
  Sampler sampler_;
  TextAssembler text_;
  std::vector<Token> sequence_;
  Result result_;
  TokenRecord last_;  // the last token written
  bool finished_ = false;
  int system2_tokens_ = 0;
  int rounds_ = 0;
  struct {
    Session::DecodeTotals system1, system2;
    double sampling = 0;
  } at_generation_start_;
};

}  // namespace

Result cancelled_before_start(const std::vector<Token>& prompt, const GenerateOptions& options) {
  Result result;
  result.finish_reason = FinishReason::Cancelled;
  result.stats.n_prompt_tokens = static_cast<int>(prompt.size());
  result.has_trace = options.trace;
  return result;
}

Result run_generation(Strategy& strategy, const std::vector<Token>& prompt, const GenerateOptions& options,
                      const RunContext& context, const ChunkCallback& on_chunk) {
  if (prompt.empty()) throw InvalidArgumentError("the prompt is empty");
  if (prompt.size() >= static_cast<size_t>(context.n_ctx)) {
    throw ContextOverflowError("the prompt has " + std::to_string(prompt.size()) +
                               " tokens and leaves no room in a context of " + std::to_string(context.n_ctx) +
                               "; use a shorter prompt or a larger n_ctx");
  }
  Driver driver(prompt, options, context, on_chunk);
  return driver.run(strategy);
}

}  // namespace fsgen
