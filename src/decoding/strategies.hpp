// Factories for the decoding methods. Each lives in its own file; System 2's variants (the
// large model, contrastive, proxy) are interchangeable parts of the fast-and-slow loop.
#pragma once
#include <algorithm>
#include <memory>
#include <vector>

#include "fsgen/draft_planner.hpp"
#include "fsgen/options.hpp"
#include "generation.hpp"
#include "session.hpp"
#include "vocab_bridge.hpp"

namespace fsgen {

// What System 2 does when it is consulted: next-token scores (logits-like) after a sequence.
class System2 {
 public:
  virtual ~System2() = default;
  virtual Source source() const = 0;  // System2 (large alone) or Combined
  virtual void prefill(const std::vector<Token>& prompt) = 0;
  // small_logits: System 1's logits after the same sequence.
  virtual const float* scores(const std::vector<Token>& seq, const float* small_logits) = 0;
};

std::unique_ptr<System2> make_large_system2(Session& large);
std::unique_ptr<System2> make_contrastive_system2(Session& large, const ContrastiveOptions& options, int n_vocab);
std::unique_ptr<System2> make_proxy_system2(Session& large_base, Session& small_base, float alpha, int n_vocab);

// One model alone ("small", "large", and Model::generate).
std::unique_ptr<Strategy> make_single_strategy(Session& session, Source source);


struct SpeculativeSetup {
  Session* verifier = nullptr;               // System 2, or the one model
  Source verifier_source = Source::System2;  // who writes the tokens the verifier chooses
  Session* drafter = nullptr;                // System 1 (nullptr: n-gram drafts only)
  // Where a round's draft comes from: System 1, an n-gram lookup in the prompt and the output so
  // far, or (Auto) each round the one with the better expected tokens per second.
  DraftSource source = DraftSource::Auto;
  SpeculativeOptions options;
  DraftPlanner* planner = nullptr;  // learns costs and acceptance across calls
  int n_vocab = 0;      // ids the verifier chooses among
  int draft_vocab = 0;  // ids System 1 drafts among: those the verifier has too (<= n_vocab)
  int max_rows = 512;  // rows one verify batch can hold (n_batch): drafts are capped one below
  // A translated pair (tokenizers differ): System 1 drafts through the bridge (SLEM or TLI, as
  // options.cross_vocab says), reading its own rendering of the prompt. nullptr: one vocabulary.
  const VocabBridge* bridge = nullptr;
  std::vector<Token> small_prompt;
};

// fs's guard (fs_guard.hpp): the strategy it hands the writing to (speculative, for System 2 =
// the large model), the large model's session and the pair's planner (the cost of a large token).
// All null: no guard.
struct FsHandover {
  Strategy* strategy = nullptr;
  Session* large = nullptr;
  DraftPlanner* planner = nullptr;
};

// What both fs strategies' guard accounts read.
// Tokens a model decodes to give its logits after seq: what its cache does not share with seq,
// and at least the last token (a cache holding more, a draft past it, rolls back to it).
inline int unread_tokens(const Session& session, const std::vector<Token>& seq) {
  return static_cast<int>(std::max<size_t>(1, seq.size() - session.cached_prefix(seq)));
}
// What System 2's next read will cost beyond one token: it reads every token System 1 wrote
// unconsulted in one batch, and whoever writes next (fs or the hand-over) pays it. What it has
// read is the prefix its cache shares with the text (it also holds rejected drafts).
inline double system2_debt(const DraftPlanner& planner, const Session& large, const std::vector<Token>& seq) {
  const int pending = static_cast<int>(seq.size() - large.cached_prefix(seq));
  if (pending <= 1) return 0;
  return std::max(0.0, planner.system2_cost(pending) - planner.system2_cost(1));
}

// System 1 writes; System 2 is consulted when the router says so (always: contrastive/proxy as
// methods; oracle: always, emitting System 2's token and recording mismatches).
std::unique_ptr<Strategy> make_fast_slow_strategy(Session& small, System2& system2, const RouterOptions& router,
                                                  bool oracle, int n_vocab, const FsHandover& handover = {});

// fs with System 2 = the large model, or oracle, on a translated pair (cross_fast_slow.cpp): the
// output in the large model's tokens, System 1 reading its own rendering of the prompt and the
// text in its own vocabulary.
std::unique_ptr<Strategy> make_cross_fast_slow_strategy(Session& small, Session& large, const VocabBridge& bridge,
                                                        std::vector<Token> small_prompt, const RouterOptions& router,
                                                        bool oracle, const FsHandover& handover = {});

std::unique_ptr<Strategy> make_speculative_strategy(const SpeculativeSetup& setup);

// The draft source the options ask for when a pair decodes speculatively (None: System 1's
// drafts), and whether one model decoding alone drafts with n-grams (only draft "ngram" does).
DraftSource speculative_draft_source(const SpeculativeOptions& options);
inline bool single_model_drafts(const SpeculativeOptions& options) { return options.draft == DraftSource::Ngram; }

// Decoding with one model, with n-gram drafts verified by that model when the options ask for them.
std::unique_ptr<Strategy> make_one_model_strategy(Session& session, Source source, const SpeculativeOptions& options,
                                                  DraftPlanner& planner, int max_rows);

}  // namespace fsgen
