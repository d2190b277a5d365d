// A source of draft tokens that costs no model call (in the spirit of llama.cpp's
// common/speculative.cpp: begin a generation, draft after the current text, learn what was
// accepted). System 1's drafts are made by the speculative strategy itself.
#pragma once
#include <memory>
#include <vector>

#include "fsgen/types.hpp"

namespace fsgen {

struct Draft {
  std::vector<Token> tokens;
  int match = 0;  // how many tokens of context the proposal rests on (0: no proposal)
};

class DraftProposer {
 public:
  virtual ~DraftProposer() = default;
  // A new generation starts from this prompt.
  virtual void begin(const std::vector<Token>& prompt) = 0;
  // Propose up to max_length tokens to follow seq (the prompt and the output so far; it only
  // grows between begin() calls). Leaves out.tokens empty when there is nothing to propose.
  virtual void draft(const std::vector<Token>& seq, int max_length, Draft& out) = 0;
};

// The continuation of the longest earlier occurrence of the text's suffix, in the prompt or the
// output so far (the match length is found per round, not fixed).
std::unique_ptr<DraftProposer> make_ngram_proposer();

}  // namespace fsgen
