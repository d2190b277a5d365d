// Small vocabulary types shared by the public API.
#pragma once
#include <cstdint>
#include <string>

namespace fsgen {

using Token = std::int32_t;

enum class Method { Small, Large, Speculative, Contrastive, Proxy, FastSlow, Oracle };
enum class Router { Entropy, Top1, Margin, Budget, Always, Never };
enum class System2Kind { Large, Contrastive, Proxy };
enum class ContrastiveVariant { Standard, Fsgen };
// A translated pair's drafts: SLEM (System 1's text re-tokenized by the large model) or TLI
// (System 1's distribution over the tokens both vocabularies hold).
enum class CrossVocab : std::int8_t { Auto = 0, Slem = 1, Tli = 2 };
// Where drafts come from: none, System 1 (a draft model), n-gram lookup, or (as an option) the
// better of both each round. The values are those of Trace::draft_source and fsgen.DraftSource.
enum class DraftSource : std::int8_t { None = 0, Model = 1, Ngram = 2, Auto = 3 };
enum class FinishReason { Eog, Stop, Length, Cancelled };

// Who wrote a token: System 1 (small) alone, System 2 (large) alone, or both combined.
enum class Source : std::int8_t { System1 = 0, System2 = 1, Combined = 2 };

// Names as used by the Python API and the CLI ("speculative", "entropy", "eog", ...).
const char* to_string(Method m);
const char* to_string(Router r);
const char* to_string(System2Kind s);
const char* to_string(ContrastiveVariant v);
const char* to_string(FinishReason f);
const char* to_string(DraftSource d);  // "none" for DraftSource::None
// Parse a name; throws InvalidArgumentError listing the valid names.
Method parse_method(const std::string& name);
Router parse_router(const std::string& name);
System2Kind parse_system2(const std::string& name);
ContrastiveVariant parse_contrastive_variant(const std::string& name);
DraftSource parse_draft_source(const std::string& name);  // "model", "ngram", "auto"
CrossVocab parse_cross_vocab(const std::string& name);    // "auto", "slem", "tli"

}  // namespace fsgen
