// Sequence states a context moved away from, kept in host memory (as llama-server's prompt
// cache): a server alternating between conversations, or a client sending one prompt greedy and
// then sampled, gets the earlier prompt back by a copy instead of reading it again.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "fsgen/types.hpp"
#include "llama_handles.hpp"

namespace fsgen {

class PromptStore {
 public:
  explicit PromptStore(size_t budget_bytes) : budget_(budget_bytes) {}

  // Saves sequence 0 of ctx, which holds `tokens`, unless an entry already holds all of them.
  // Entries the new one holds whole go, then the oldest until the budget holds it; a state larger
  // than the whole budget is not kept.
  void save(llama_context* ctx, const std::vector<Token>& tokens);

  // The longest prefix of seq[0:n] an entry holds.
  size_t best_prefix(const Token* seq, size_t n) const;

  // Restores into sequence 0 of ctx the entry holding the longest prefix of seq[0:n] and returns
  // its tokens (the entry leaves the store: its state is the context's now). False when the store
  // is empty, or when llama.cpp refused the state: that entry is dropped and sequence 0 may have
  // been emptied.
  bool restore(llama_context* ctx, const Token* seq, size_t n, std::vector<Token>& tokens);

  size_t bytes() const { return used_; }
  size_t entries() const { return entries_.size(); }

 private:
  struct Entry {
    std::vector<Token> tokens;
    std::vector<uint8_t> state;
  };
  struct Match {
    size_t entry;   // index in entries_ (entries_.size(): none)
    size_t length;  // of the prefix it holds
  };
  Match longest(const Token* seq, size_t n) const;  // the entry holding the longest prefix of seq[0:n]
  std::deque<Entry>::iterator drop(std::deque<Entry>::iterator it);  // the entry after it
  std::deque<Entry> entries_;  // oldest first
  size_t budget_;
  size_t used_ = 0;
};

}  // namespace fsgen
