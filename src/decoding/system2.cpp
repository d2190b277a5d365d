// The three things System 2 can be: the large model alone, contrastive decoding with the small
// model, or proxy tuning with the small model and its base. The math is in distribution.cpp.
#include <vector>

#include "distribution.hpp"
#include "decoding/strategies.hpp"

namespace fsgen {
namespace {

class LargeAlone final : public System2 {
 public:
  explicit LargeAlone(Session& large) : large_(large) {}
  Source source() const override { return Source::System2; }
  void prefill(const std::vector<Token>& prompt) override { large_.eval(prompt); }
  const float* scores(const std::vector<Token>& seq, const float*) override {
    large_.eval(seq);  // catches up on everything System 1 wrote since the last call, in one batch
    return large_.last_logits();
  }

 private:
  Session& large_;
};

class Contrastive final : public System2 {
 public:
  Contrastive(Session& large, const ContrastiveOptions& options, int n_vocab)
      : large_(large), options_(options), scores_(n_vocab) {}
  Source source() const override { return Source::Combined; }
  void prefill(const std::vector<Token>& prompt) override { large_.eval(prompt); }
  const float* scores(const std::vector<Token>& seq, const float* small_logits) override {
    large_.eval(seq);
    contrastive_scores(small_logits, large_.last_logits(), static_cast<int>(scores_.size()), options_, scores_.data());
    return scores_.data();
  }

 private:
  Session& large_;
  ContrastiveOptions options_;
  std::vector<float> scores_;
};

class Proxy final : public System2 {
 public:
  Proxy(Session& large_base, Session& small_base, float alpha, int n_vocab)
      : large_base_(large_base), small_base_(small_base), alpha_(alpha), scores_(n_vocab) {}
  Source source() const override { return Source::Combined; }
  void prefill(const std::vector<Token>& prompt) override {
    large_base_.eval(prompt);
    small_base_.eval(prompt);
  }
  const float* scores(const std::vector<Token>& seq, const float* small_tuned_logits) override {
    large_base_.eval(seq);
    small_base_.eval(seq);
    proxy_scores(large_base_.last_logits(), small_tuned_logits, small_base_.last_logits(),
                 static_cast<int>(scores_.size()), alpha_, scores_.data());
    return scores_.data();
  }

 private:
  Session& large_base_;
  Session& small_base_;
  float alpha_;
  std::vector<float> scores_;
};

}  // namespace

std::unique_ptr<System2> make_large_system2(Session& large) { return std::make_unique<LargeAlone>(large); }
std::unique_ptr<System2> make_contrastive_system2(Session& large, const ContrastiveOptions& options, int n_vocab) {
  return std::make_unique<Contrastive>(large, options, n_vocab);
}
std::unique_ptr<System2> make_proxy_system2(Session& large_base, Session& small_base, float alpha, int n_vocab) {
  return std::make_unique<Proxy>(large_base, small_base, alpha, n_vocab);
}

}  // namespace fsgen
