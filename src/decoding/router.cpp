#include "decoding/router.hpp"

namespace fsgen {

bool RouterOptions::consults(float value) const {
  const float threshold = effective_threshold();
  switch (router) {
    case Router::Entropy: return value > threshold;
    case Router::Top1:
    case Router::Margin: return value < threshold;
    case Router::Budget: return value > threshold;  // an adaptive threshold on the entropy
    case Router::Always: return true;
    case Router::Never: return false;
  }
  return false;
}

bool router_consults(const RouterOptions& router, const Uncertainty& u) {
  switch (router.router) {
    case Router::Top1: return router.consults(u.top1);
    case Router::Margin: return router.consults(u.margin);
    default: return router.consults(u.entropy);
  }
}

}  // namespace fsgen
