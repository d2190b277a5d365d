// Sources of draft tokens behind one interface, in the spirit of llama.cpp's
// common/speculative.cpp: begin a generation, offer a draft after the current text, write it. The
// speculative strategy asks each source what it offers for a round, the planner prices the
// offers, the better one drafts, and the verifier judges the tokens with the source's proposal
// probabilities. Sources: n-gram lookup (ngram.cpp) and System 1's drafts (model_drafter.cpp).
#pragma once
#include <cstddef>
#include <memory>
#include <vector>

#include "distribution.hpp"
#include "fsgen/draft_planner.hpp"
#include "fsgen/options.hpp"
#include "fsgen/types.hpp"

namespace fsgen {

class Emitter;  // generation.hpp
class Session;  // session.hpp
class VocabBridge;  // vocab_bridge.hpp

// What a source knows of the round it offers a draft for.
struct DraftRound {
  const std::vector<Token>& sequence;  // the prompt and the output so far
  int limit;                           // the longest draft the verify batch and the room allow
  int fixed;                           // > 0: the user's fixed draft length, capped at limit
  size_t room;                         // tokens this generation may still write
};

// A written draft: its tokens and System 1's uncertainty at each (NaN where no model ran).
struct Draft {
  std::vector<Token> tokens;
  std::vector<Uncertainty> uncertainty;
  double cost = 0;  // what writing it cost System 1, priced by the planner's table
};

class DraftProposer {
 public:
  virtual ~DraftProposer() = default;
  virtual DraftSource source() const = 0;
  // A new generation starts from this prompt.
  virtual void begin(const std::vector<Token>& prompt) = 0;
  // The draft length offered for this round (0: none), chosen with the planner. Costs no model
  // call; the planner's probes count here whether or not the offer is taken.
  virtual int offer(const DraftRound& round, DraftPlanner& planner) = 0;
  // Expected tokens per second of a round verifying `length` of the offered tokens.
  virtual double expected_rate(const DraftPlanner& planner, int length) const = 0;
  // Writes the draft (a model's may end before `length`, where it is unsure).
  virtual const Draft& draft(Emitter& out, DraftPlanner& planner, int length) = 0;
  // The proposal's probability of token t at draft row i: exact rejection sampling needs it (a
  // deterministic proposal puts 1 on its own token).
  virtual float probability(size_t row, Token t) const = 0;
  // What the planner learns acceptance by (the n-gram match length; 0 for System 1's drafts).
  virtual int match() const { return 0; }
  // The verifier judged `judged` tokens of this source's draft and accepted `accepted`.
  virtual void observe(int /*judged*/, int /*accepted*/) {}
};

// The continuation of the longest earlier occurrence of the text's suffix, in the prompt or the
// output so far (the match length is found per round, not fixed).
std::unique_ptr<DraftProposer> make_ngram_proposer();

// System 1's own tokens, greedy or sampled with the generation's sampler, among the first
// n_vocab ids. It reads the sequence lazily: it is left behind while it does not draft.
// System 1's offer, in whichever vocabulary it drafts: the user's fixed length, or the planner's
// choice given the tokens System 1 must read first (lag) and the room left.
int system1_offer(const DraftRound& round, DraftPlanner& planner, const SpeculativeOptions& options, int lag);

std::unique_ptr<DraftProposer> make_model_drafter(Session& small, const SpeculativeOptions& options, int n_vocab);

// A translated pair (vocab_bridge.hpp): System 1 reads its own prompt and the output re-tokenized
// in its vocabulary. SLEM: its draft text re-tokenized by the large model, a deterministic
// proposal. TLI: its distribution over the tokens both vocabularies hold, renormalised.
std::unique_ptr<DraftProposer> make_slem_drafter(Session& small, const VocabBridge& bridge,
                                                 std::vector<Token> small_prompt, const SpeculativeOptions& options);
std::unique_ptr<DraftProposer> make_tli_drafter(Session& small, const VocabBridge& bridge,
                                                std::vector<Token> small_prompt, const SpeculativeOptions& options);
// Each round SLEM or TLI, the one whose drafts the verifier has been accepting more of.
std::unique_ptr<DraftProposer> make_cross_vocab_auto(std::unique_ptr<DraftProposer> slem,
                                                     std::unique_ptr<DraftProposer> tli);

}  // namespace fsgen
