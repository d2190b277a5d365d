#include "prompt_store.hpp"

#include "session.hpp"

namespace fsgen {

std::deque<PromptStore::Entry>::iterator PromptStore::drop(std::deque<Entry>::iterator it) {
  used_ -= it->state.size();
  return entries_.erase(it);
}

void PromptStore::save(llama_context* ctx, const std::vector<Token>& tokens) {
  if (tokens.empty() || budget_ == 0) return;
  for (const Entry& e : entries_) {
    if (common_prefix(e.tokens, tokens.data(), tokens.size()) == tokens.size()) return;
  }
  const size_t size = llama_state_seq_get_size(ctx, 0);
  if (size == 0 || size > budget_) return;
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = common_prefix(tokens, it->tokens.data(), it->tokens.size()) == it->tokens.size() ? drop(it) : it + 1;
  }
  while (!entries_.empty() && used_ + size > budget_) drop(entries_.begin());
  Entry entry{tokens, std::vector<uint8_t>(size)};
  if (llama_state_seq_get_data(ctx, entry.state.data(), size, 0) != size) return;
  used_ += size;
  entries_.push_back(std::move(entry));
}

PromptStore::Match PromptStore::longest(const Token* seq, size_t n) const {
  Match best{entries_.size(), 0};
  for (size_t i = 0; i < entries_.size(); ++i) {
    const size_t length = common_prefix(entries_[i].tokens, seq, n);
    if (length > best.length) best = {i, length};
  }
  return best;
}

size_t PromptStore::best_prefix(const Token* seq, size_t n) const { return longest(seq, n).length; }

bool PromptStore::restore(llama_context* ctx, const Token* seq, size_t n, std::vector<Token>& tokens) {
  const Match match = longest(seq, n);
  if (match.entry == entries_.size()) return false;
  const auto best = entries_.begin() + static_cast<std::ptrdiff_t>(match.entry);
  const bool restored = llama_state_seq_set_data(ctx, best->state.data(), best->state.size(), 0) == best->state.size();
  if (restored) tokens = std::move(best->tokens);
  drop(best);
  return restored;
}

}  // namespace fsgen
