// fsgen's exceptions: one base, one class per way things go wrong.
// The Python bindings map each to the exception of the same name in `fsgen`.
#pragma once
#include <stdexcept>
#include <string>

namespace fsgen {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The file is missing, unreadable, not GGUF, truncated, or llama.cpp refused it.
class ModelLoadError : public Error { using Error::Error; };
// Two models of a pair (or a proxy triple) do not share one vocabulary.
class IncompatibleVocabError : public Error { using Error::Error; };
// The model has no chat template, or its template cannot render the messages.
class TemplateError : public Error { using Error::Error; };
// The prompt does not fit in the context.
class ContextOverflowError : public Error { using Error::Error; };
// Decoding failed or produced non-finite logits.
class GenerationError : public Error { using Error::Error; };
// A bad argument (the Python class also derives from ValueError).
class InvalidArgumentError : public Error { using Error::Error; };

}  // namespace fsgen
