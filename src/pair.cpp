#include "fsgen/pair.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "planning/calibration.hpp"
#include "fsgen/error.hpp"
#include "fsgen/plan.hpp"
#include "generation.hpp"
#include "locked_call.hpp"
#include "rpc/remote_model.hpp"
#include "session.hpp"
#include "decoding/strategies.hpp"
#include "vocab_bridge.hpp"
#include "weights.hpp"

namespace fsgen {

void check_vocab_compatible(const Model& a, const Model& b) {
  constexpr int kMaxSizeDifference = 128;  // as llama.cpp's speculative decoding
  constexpr int kFirstCheckedToken = 5;
  const llama_vocab* va = a.vocab();
  const llama_vocab* vb = b.vocab();
  const std::string names = a.info().path + " and " + b.info().path;
  if (llama_vocab_type(va) != llama_vocab_type(vb)) {
    throw IncompatibleVocabError(names + " use different tokenizer types");
  }
  if (llama_vocab_get_add_bos(va) != llama_vocab_get_add_bos(vb) || llama_vocab_bos(va) != llama_vocab_bos(vb) ||
      llama_vocab_get_add_eos(va) != llama_vocab_get_add_eos(vb) || llama_vocab_eos(va) != llama_vocab_eos(vb)) {
    throw IncompatibleVocabError(names + " handle BOS/EOS differently (ids " + std::to_string(llama_vocab_bos(va)) +
                                 "/" + std::to_string(llama_vocab_eos(va)) + " vs " +
                                 std::to_string(llama_vocab_bos(vb)) + "/" + std::to_string(llama_vocab_eos(vb)) + ")");
  }
  const int na = llama_vocab_n_tokens(va), nb = llama_vocab_n_tokens(vb);
  if (std::abs(na - nb) > kMaxSizeDifference) {
    throw IncompatibleVocabError(names + " have vocabularies of " + std::to_string(na) + " and " +
                                 std::to_string(nb) + " tokens (at most " + std::to_string(kMaxSizeDifference) +
                                 " apart)");
  }
  for (int t = kFirstCheckedToken; t < std::min(na, nb); ++t) {
    const char* ta = llama_vocab_get_text(va, t);
    const char* tb = llama_vocab_get_text(vb, t);
    if (std::strcmp(ta, tb) != 0) {
      throw IncompatibleVocabError(names + " differ at token " + std::to_string(t) + ": \"" + ta + "\" vs \"" + tb +
                                   "\"");
    }
  }
}

namespace {

// What a translated pair runs: the methods that meet in text (speculative drafts, fs and oracle
// consulting the large model alone) and either model alone.
bool translated_pair_runs(const GenerateOptions& options) {
  switch (options.method) {
    case Method::Speculative:
    case Method::Small:
    case Method::Large: return true;
    case Method::FastSlow:
    case Method::Oracle: return options.system2 == System2Kind::Large;
    default: return false;
  }
}

// What `reader` (System 1, or its base) reads in place of each id that `writer` (the large
// model) has beyond reader's vocabulary: the first token of that id's text in reader's
// vocabulary, or token 0 where the text gives none (an unused entry, which a sound model does
// not write). Such ids come from the large model: speculative decoding and large-only write them
// (and a prompt, tokenized by the large model, may hold one). In speculative decoding the large
// model verifies every token, so what System 1 reads changes how well it drafts, never the output.
std::vector<Token> substitutes(const Model& reader, const Model& writer) {
  const int from = reader.info().n_vocab, to = writer.info().n_vocab;
  std::vector<Token> out;
  const llama_vocab* vocab = reader.vocab();
  const bool adds_bos = llama_vocab_get_add_bos(vocab);
  for (Token t = from; t < to; ++t) {
    Token substitute = 0;
    try {
      std::vector<Token> ids = reader.tokenize(writer.piece(t), true);
      if (adds_bos && !ids.empty() && ids.front() == llama_vocab_bos(vocab)) ids.erase(ids.begin());
      if (!ids.empty()) substitute = ids.front();
    } catch (const InvalidArgumentError&) {  // not valid UTF-8 on its own (part of a character)
    }
    out.push_back(substitute);
  }
  return out;
}

}  // namespace

struct Pair::Impl {
  Model small, large;
  std::optional<Model> small_base;
  ModelOptions options;
  std::timed_mutex mutex;  // one generation at a time: the contexts' caches are shared state
  std::atomic<bool> cancel{false};
  bool closed = false;  // under mutex
  CancelFlags cancel_flags{&cancel, nullptr};  // the Sessions' abort callback reads these
  std::unique_ptr<Session> small_session, large_session, small_base_session;
  DraftPlanner planner;        // the large model verifying (speculative; large with n-gram drafts)
  DraftPlanner small_planner;  // the small model verifying its own n-gram drafts
  // Vocabularies may differ by a few entries (check_vocab_compatible). Where the large model
  // decides alone (large, speculative verification) it chooses among all of its ids; System 1
  // drafts among the ids both have. Where models of a shared pair are combined or consulted token
  // by token (fs, oracle, contrastive, proxy) tokens come from the ids all of them share.
  int n_vocab = 0;        // shared by all models of the pair
  int draft_vocab = 0;    // shared by System 1 and the large model
  int large_vocab = 0;
  std::vector<Token> small_reads, small_base_reads;  // substitutes (above) for the large model's extra ids
  // A translated pair: why the vocabularies are not one (check_vocab_compatible's message), and
  // the bridge its drafts cross. Empty / null: shared.
  std::string vocab_difference;
  std::unique_ptr<VocabBridge> bridge;

  Impl(Model s, Model l, std::optional<Model> sb, const ModelOptions& o, std::string difference)
      : small(std::move(s)), large(std::move(l)), small_base(std::move(sb)), options(o),
        planner(std::clamp(double(small.info().n_params) / std::max<double>(1.0, double(large.info().n_params)),
                           0.05, 1.0)),
        vocab_difference(std::move(difference)) {
    large_vocab = large.info().n_vocab;
    draft_vocab = std::min(small.info().n_vocab, large_vocab);
    n_vocab = draft_vocab;
    if (small_base) n_vocab = std::min(n_vocab, small_base->info().n_vocab);
    if (!vocab_difference.empty()) {
      bridge = std::make_unique<VocabBridge>(small, large);
      return;  // System 1 reads re-tokenized text, not the large model's ids
    }
    small_reads = substitutes(small, large);
    if (small_base) small_base_reads = substitutes(*small_base, large);
  }
  bool translated() const { return bridge != nullptr; }

  Session& session(std::unique_ptr<Session>& slot, const Model& model, const std::vector<Token>& reads = {}) {
    if (!slot) {
      slot = make_session(weights_of(model), options, &cancel_flags);
      if (!reads.empty()) slot = std::make_unique<SubstitutingSession>(std::move(slot), reads);
    }
    return *slot;
  }
  // A Pair shares the Model handles' weights instead of loading them again.
  static std::shared_ptr<const Weights> weights_of(const Model& model) { return model_weights(model); }
};

Pair::Pair(Model small, Model large, std::optional<Model> small_base, const ModelOptions& context_options) {
  std::string difference;
  try {
    check_vocab_compatible(small, large);
  } catch (const IncompatibleVocabError& e) {
    difference = e.what();
  }
  if (small_base) check_vocab_compatible(small, *small_base);
  ModelOptions options = context_options;
  if (options.n_threads == 0) options.n_threads = large.options().n_threads;
  std::optional<Model> base_view;
  if (small_base) base_view = model_view(*small_base);
  impl_ = std::make_unique<Impl>(model_view(small), model_view(large), std::move(base_view), options,
                                 std::move(difference));
}

Pair::~Pair() {
  impl_.reset();
  release_free_memory();
}

const Model& Pair::small() const { return impl_->small; }
const Model& Pair::large() const { return impl_->large; }
const std::optional<Model>& Pair::small_base() const { return impl_->small_base; }

VocabMatch Pair::vocab() const {
  VocabMatch match;
  if (const VocabBridge* bridge = impl_->bridge.get()) {
    match.translated = true;
    match.overlap = bridge->overlap();
    match.shared_tokens = bridge->shared_tokens();
  } else {
    match.shared_tokens = impl_->draft_vocab;
    match.overlap = double(impl_->draft_vocab) / std::max(impl_->small.info().n_vocab, impl_->large_vocab);
  }
  return match;
}

std::pair<std::string, std::string> Pair::apply_chat_template(const std::vector<ChatMessage>& messages,
                                                              bool add_assistant) const {
  return {impl_->small.apply_chat_template(messages, add_assistant),
          impl_->large.apply_chat_template(messages, add_assistant)};
}

void Pair::cancel() { impl_->cancel.store(true); }

DraftPlanner Pair::planner() const {
  std::lock_guard<std::timed_mutex> lock(impl_->mutex);
  return impl_->planner;
}

CostCurve Pair::calibrate(bool drafter) {
  Impl& p = *impl_;
  std::lock_guard<std::timed_mutex> lock(p.mutex);
  if (p.closed) throw InvalidArgumentError("this pair is closed");
  p.cancel.store(false);
  Session& large = p.session(p.large_session, p.large);
  Session* small = drafter ? &p.session(p.small_session, p.small, p.small_reads) : nullptr;
  const int max_rows = std::min(p.options.n_batch, kMaxOutputRows);
  std::vector<Token> context = calibration_context(p.large);
  // A translated pair's models read one timing sequence: ids both have (the cost does not depend on which).
  if (p.translated()) {
    for (Token& t : context) t %= std::min(p.small.info().n_vocab, p.large_vocab);
  }
  CostCurve curve = measure_costs(large, small, context, max_rows);
  p.planner.set_calibration(curve);
  return curve;
}

void Pair::set_calibration(const CostCurve& curve) {
  std::lock_guard<std::timed_mutex> lock(impl_->mutex);
  impl_->planner.set_calibration(curve);
}

CostTable Pair::cost_table() const {
  std::lock_guard<std::timed_mutex> lock(impl_->mutex);
  return impl_->planner.table();
}

void Pair::set_cost_table(const CostTable& table) {
  std::lock_guard<std::timed_mutex> lock(impl_->mutex);
  impl_->planner.set_table(table);
}

void Pair::close() {
  impl_->cancel.store(true);
  std::lock_guard<std::timed_mutex> lock(impl_->mutex);
  impl_->closed = true;
  impl_->small_session.reset();
  impl_->large_session.reset();
  impl_->small_base_session.reset();
  // The pair's own handles on the weights (model_view): freed here unless a Model still holds them.
  impl_->small.close();
  impl_->large.close();
  if (impl_->small_base) impl_->small_base->close();
}  // (Model::close has released the freed memory)

bool Pair::large_lost() const {
  const auto weights = model_weights(impl_->large);
  return weights->remote && weights->remote->lost();
}

void Pair::reload_large() {
  std::lock_guard<std::timed_mutex> lock(impl_->mutex);
  if (impl_->closed) throw InvalidArgumentError("this pair is closed");
  const auto weights = model_weights(impl_->large);
  if (!weights->remote) throw InvalidArgumentError("the large model is not on RPC servers: nothing to reload");
  impl_->large_session.reset();  // its context was in the old helper
  weights->remote->restart();
}

void Pair::check(const Prompt& prompt, const GenerateOptions& options) const {
  prompt.check();
  options.validate();
  if (impl_->translated() && !translated_pair_runs(options)) {
    const bool fs_like = options.method == Method::FastSlow || options.method == Method::Oracle;
    const std::string what = fs_like ? std::string(to_string(options.method)) + " with system2=\"" +
                                           to_string(options.system2) + "\""
                                     : std::string(to_string(options.method));
    throw IncompatibleVocabError(what + " combines the models' scores token by token, which needs one vocabulary: " +
                                 impl_->vocab_difference +
                                 ". On this pair speculative, fs and oracle with system2=\"large\", small and "
                                 "large work (they meet in text across the tokenizers)");
  }
  if (plan_for(options).needs_small_base && !impl_->small_base) {
    throw InvalidArgumentError("proxy tuning needs the small model's base: Pair(small, large, small_base=...)");
  }
}

Result Pair::generate(const Prompt& prompt, const GenerateOptions& options, const ChunkCallback& on_chunk,
                      const std::atomic<bool>* stop) {
  check(prompt, options);
  return run(prompt, options, on_chunk, stop);
}

std::unique_ptr<GenerationJob> Pair::start(const Prompt& prompt, const GenerateOptions& options, bool stream) {
  check(prompt, options);
  return std::make_unique<GenerationJob>(
      [this, prompt, options](const ChunkCallback& on_chunk, const std::atomic<bool>* stop) {
        return run(prompt, options, on_chunk, stop);
      },
      stream);
}

Result Pair::run(const Prompt& prompt, const GenerateOptions& options, const ChunkCallback& on_chunk,
                 const std::atomic<bool>* stop) {
  Impl& p = *impl_;
  const CallPlan plan = plan_for(options);
  // A translated pair: System 1 writing alone writes after its own rendering of the prompt, and
  // reads its own beside the large model's where it drafts.
  const bool small_writes = p.translated() && options.method == Method::Small;
  const bool small_drafts = p.translated() && options.method == Method::Speculative &&
                            speculative_draft_source(options.speculative) != DraftSource::Ngram;
  // fs and oracle: System 1 writes after its own rendering, as does the guard's hand-over.
  const bool small_consults = p.translated() && (options.method == Method::FastSlow || options.method == Method::Oracle);
  std::vector<Token> small_tokens;
  const LockedCall call(p.mutex, p.cancel, p.cancel_flags, stop, [&] {
    if (p.closed) throw InvalidArgumentError("this pair is closed");
    if (small_drafts || small_consults) small_tokens = render_prompt(p.small, prompt);
    return render_prompt(small_writes ? p.small : p.large, prompt);  // the large model's template decides
  });
  if (!call.started()) {
    Result cancelled = cancelled_before_start({}, options);
    cancelled.stats.vocab_translated = p.translated() ? 1 : 0;
    return cancelled;
  }
  const std::vector<Token>& tokens = call.tokens();
  auto small = [&]() -> Session& { return p.session(p.small_session, p.small, p.small_reads); };
  auto large = [&]() -> Session& { return p.session(p.large_session, p.large); };
  auto small_base = [&]() -> Session& { return p.session(p.small_base_session, *p.small_base, p.small_base_reads); };
  // Every decision of this generation prices from these snapshots; its timings reach the pair's
  // tables afterwards.
  const CostTable table = p.planner.table();
  DraftPlanner planner = DraftPlanner::for_generation(table, options.sampling);
  DraftPlanner small_planner = DraftPlanner::for_generation(p.small_planner.table(), options.sampling);

  std::unique_ptr<System2> system2;
  std::unique_ptr<Strategy> handover;  // before strategy: the fs strategy points at it
  std::unique_ptr<Strategy> strategy;
  const Model* text_model = &p.large;
  auto make_system2 = [&](System2Kind kind) {
    switch (kind) {
      case System2Kind::Large: return make_large_system2(large());
      case System2Kind::Contrastive: return make_contrastive_system2(large(), options.contrastive, p.n_vocab);
      case System2Kind::Proxy: return make_proxy_system2(large(), small_base(), options.proxy.alpha, p.n_vocab);
    }
    return std::unique_ptr<System2>();
  };
  // System 1 (or n-grams) drafting, the large model verifying: speculative (among all of the
  // large model's ids), and fs's guard (among the shared ones, as the rest of fs).
  auto speculative_setup = [&](int verify_vocab) {
    SpeculativeSetup setup;
    setup.verifier = &large();
    setup.verifier_source = Source::System2;
    setup.source = speculative_draft_source(options.speculative);
    if (setup.source != DraftSource::Ngram) setup.drafter = &small();
    setup.options = options.speculative;
    setup.planner = &planner;
    setup.n_vocab = verify_vocab;
    setup.draft_vocab = std::min(p.draft_vocab, verify_vocab);
    setup.max_rows = p.options.n_batch;
    if (p.translated()) {
      setup.bridge = p.bridge.get();
      setup.small_prompt = small_tokens;
    }
    return setup;
  };
  RouterOptions always;
  always.router = Router::Always;
  switch (options.method) {
    case Method::Small:
      strategy = make_one_model_strategy(small(), Source::System1, options.speculative, small_planner,
                                         p.options.n_batch);
      text_model = &p.small;
      break;
    case Method::Large:
      strategy = make_one_model_strategy(large(), Source::System2, options.speculative, planner, p.options.n_batch);
      break;
    case Method::Speculative:
      strategy = make_speculative_strategy(speculative_setup(p.large_vocab));
      break;
    case Method::Contrastive:
      system2 = make_system2(System2Kind::Contrastive);
      strategy = make_fast_slow_strategy(small(), *system2, always, false, p.n_vocab);
      break;
    case Method::Proxy:
      system2 = make_system2(System2Kind::Proxy);
      strategy = make_fast_slow_strategy(small(), *system2, always, false, p.n_vocab);
      break;
    case Method::FastSlow:
    case Method::Oracle: {
      if (p.translated()) {  // System 2 is the large model (check): they meet in text
        FsHandover guard;
        if (plan.guarded) {
          handover = make_speculative_strategy(speculative_setup(p.large_vocab));
          guard = {handover.get(), &large(), &planner};
        }
        strategy = make_cross_fast_slow_strategy(small(), large(), *p.bridge, small_tokens, options.router,
                                                 options.method == Method::Oracle, guard);
        break;
      }
      system2 = make_system2(options.system2);
      // fs's guard hands over to speculative verification, which writes the large model's text.
      FsHandover guard;
      if (plan.guarded) {
        handover = make_speculative_strategy(speculative_setup(p.n_vocab));
        guard = {handover.get(), &large(), &planner};
      }
      strategy = make_fast_slow_strategy(small(), *system2, options.router, options.method == Method::Oracle,
                                         p.n_vocab, guard);
      break;
    }
  }
  RunContext context{text_model, p.options.n_ctx, text_model->info().n_vocab, &p.cancel_flags, p.translated(),
                     p.small_session.get(), p.large_session.get()};
  const DraftPlanner pricing = DraftPlanner::for_generation(p.planner.calibrated_table(), options.sampling);
  if (options.method != Method::Small) context.pricing = &pricing;  // the large model's table
  Result result = run_generation(*strategy, tokens, options, context, on_chunk);
  p.planner.fold(planner);
  p.small_planner.fold(small_planner);
  result.cost_table = (options.method == Method::Small ? small_planner.table() : table).id();
  return result;
}

}  // namespace fsgen
