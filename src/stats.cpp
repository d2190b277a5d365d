#include "fsgen/result.hpp"

namespace fsgen {

const std::vector<StatField>& stat_fields() {
  static const std::vector<StatField> fields = {
      {"n_prompt_tokens", &Stats::n_prompt_tokens},
      {"n_prompt_cached", &Stats::n_prompt_cached},
      {"n_tokens", &Stats::n_tokens},
      {"prompt_seconds", nullptr, &Stats::prompt_seconds},
      {"generation_seconds", nullptr, &Stats::generation_seconds},
      {"seconds", nullptr, &Stats::seconds},
      {"tokens_per_second", nullptr, &Stats::tokens_per_second},
      {"system2_calls", &Stats::system2_calls},
      {"system2_fraction", nullptr, &Stats::system2_fraction},
      {"mismatches", &Stats::mismatches},
      {"mismatch_fraction", nullptr, &Stats::mismatch_fraction},
      {"drafted", &Stats::drafted},
      {"accepted", &Stats::accepted},
      {"drafted_ngram", &Stats::drafted_ngram},
      {"accepted_ngram", &Stats::accepted_ngram},
      {"acceptance_rate", nullptr, &Stats::acceptance_rate},
      {"mean_accepted_length", nullptr, &Stats::mean_accepted_length},
      {"guard_tokens", &Stats::guard_tokens},
      {"vocab_translated", &Stats::vocab_translated},
      {"system1_seconds", nullptr, &Stats::system1_seconds},
      {"system1_decodes", &Stats::system1_decodes},
      {"system1_tokens", &Stats::system1_tokens},
      {"system2_seconds", nullptr, &Stats::system2_seconds},
      {"system2_decodes", &Stats::system2_decodes},
      {"system2_tokens", &Stats::system2_tokens},
      {"sampling_seconds", nullptr, &Stats::sampling_seconds},
      {"priced_seconds", nullptr, &Stats::priced_seconds},
  };
  return fields;
}

}  // namespace fsgen
