// SLEM (string-level exact match) drafts for a translated pair: System 1 writes ahead in its own
// vocabulary, its text is re-tokenized by the large model's tokenizer, and those tokens are a
// deterministic proposal (probability 1 on each), which exact rejection sampling verifies as it
// does an n-gram draft: the output follows the large model whatever System 1 wrote.
#include <llama.h>

#include <algorithm>
#include <cmath>

#include "drafts/bridged_drafter.hpp"
#include "generation.hpp"
#include "session.hpp"

namespace fsgen {
namespace {

class SlemDrafter final : public BridgedDrafter {
 public:
  using BridgedDrafter::BridgedDrafter;

  const Draft& draft(Emitter& out, DraftPlanner& planner, int length) override {
    Sampler& sampler = out.sampler();
    const std::vector<Token>& sequence = out.sequence();
    drafted_at_ = sequence.size();
    seq_ = reader_.read(sequence);
    const int small_vocab = bridge_.small().info().n_vocab;
    // System 1's tokens may outrun the large model's: it drafts only while its context has room.
    if (seq_.size() + static_cast<size_t>(length) + 2 > static_cast<size_t>(small_.n_ctx())) length = -1;
    // One token more than asked: the end of the text is usually cut (below).
    std::string text;
    small_ends_.clear();
    bool ended = false;  // System 1 ended the text (an end-of-generation token)
    for (int i = 0; i <= length; ++i) {
      small_.eval(seq_);
      if (small_.last_decoded_tokens() == 1) planner.observe_draft_step(small_.last_decode_seconds());
      const float* logits = small_.last_logits();
      if (options_.draft_p_min > 0 && measure_uncertainty(logits, small_vocab).top1 < options_.draft_p_min) break;
      Token token;
      if (sampler.greedy()) {
        token = argmax(logits, small_vocab);
      } else {
        sampler.distribution(logits, small_vocab, q_);
        token = sampler.draw(q_);
      }
      if (bridge_.small().is_eog(token)) {
        ended = true;
        break;
      }
      text += bridge_.small_piece(token);
      small_ends_.push_back(text.size());
      seq_.push_back(token);
    }
    propose(sequence, text, ended);
    return draft_;
  }

  float probability(size_t row, Token t) const override { return t == draft_.tokens[row] ? 1.0f : 0.0f; }

 protected:
  int extra_steps() const override { return 1; }  // the token past the draft (above)

 private:
  // The large model's tokens for System 1's text after the output so far. The last few output
  // tokens (back to a word start) are tokenized with it, so that a draft continuing a word is
  // split as the large model would split the whole; where that would re-split tokens already
  // written, the draft text is tokenized alone.
  void propose(const std::vector<Token>& written, std::string text, bool ended) {
    draft_.tokens.clear();
    draft_.uncertainty.clear();
    text.resize(complete_utf8_prefix(text));  // a character System 1 has not finished is not drafted
    const size_t first_output = reader_.large_prompt();
    size_t anchor = written.size();
    while (anchor > first_output && written.size() - anchor < kAnchorTokens) {
      --anchor;
      const std::string& piece = bridge_.large_piece(written[anchor]);
      if (!piece.empty() && piece[0] == ' ') break;
    }
    const std::string anchor_text = bridge_.bytes(bridge_.large(), written.data() + anchor, written.size() - anchor);
    std::vector<Token> ids;
    if (!text.empty()) {
      ids = bridge_.fragment(bridge_.large(), anchor_text + text);
      const size_t m = written.size() - anchor;
      if (ids.size() >= m && std::equal(written.begin() + static_cast<long>(anchor), written.end(), ids.begin())) {
        ids.erase(ids.begin(), ids.begin() + static_cast<long>(m));
      } else {
        ids = bridge_.fragment(bridge_.large(), text);
      }
      // Never draft from a half-word: where System 1 stopped, its text may go on ("wor" + "ld")
      // and the large model's last tokens split otherwise, so the proposal is cut back to the last
      // boundary both agree on before the end: where a large token and one of System 1's both
      // end. Text System 1 ended (end of generation) is whole.
      if (!ended) {
        size_t keep = 0, end = 0;
        for (size_t j = 0; j < ids.size(); ++j) {
          end += bridge_.large_piece(ids[j]).size();
          if (end < text.size() && std::binary_search(small_ends_.begin(), small_ends_.end(), end)) keep = j + 1;
        }
        ids.resize(keep);
      }
    }
    if (ended) ids.push_back(llama_vocab_eos(bridge_.large().vocab()));
    if (ids.size() > static_cast<size_t>(limit_)) ids.resize(static_cast<size_t>(limit_));
    draft_.tokens = std::move(ids);
    draft_.uncertainty.assign(draft_.tokens.size(), Uncertainty{NAN, NAN, NAN, 0});
  }

  static constexpr size_t kAnchorTokens = 4;
  std::vector<Token> seq_;
  std::vector<size_t> small_ends_;  // where each of System 1's draft tokens ends in the draft text
  Draft draft_;
  Candidates q_;
};

}  // namespace

std::unique_ptr<DraftProposer> make_slem_drafter(Session& small, const VocabBridge& bridge,
                                                 std::vector<Token> small_prompt, const SpeculativeOptions& options) {
  return std::make_unique<SlemDrafter>(small, bridge, std::move(small_prompt), options);
}

}  // namespace fsgen
