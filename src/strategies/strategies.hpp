// Factories for the decoding methods. Each lives in its own file; System 2's variants (the
// large model, contrastive, proxy) are interchangeable parts of the fast-and-slow loop.
#pragma once
#include <memory>
#include <vector>

#include "fsgen/draft_planner.hpp"
#include "fsgen/options.hpp"
#include "generation.hpp"
#include "session.hpp"

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

// System 1 writes; System 2 is consulted when the router says so (always: contrastive/proxy as
// methods; oracle: always, emitting System 2's token and recording mismatches).
std::unique_ptr<Strategy> make_fast_slow_strategy(Session& small, System2& system2, const RouterOptions& router,
                                                  bool oracle, int n_vocab);

// max_rows: the rows one verify batch can hold (n_batch): drafts are capped one below it.
std::unique_ptr<Strategy> make_speculative_strategy(Session& small, Session& large, const SpeculativeOptions& options,
                                                    DraftPlanner& planner, int n_vocab, int max_rows);

}  // namespace fsgen
