"""fsgen's exceptions. Every error fsgen raises derives from FsgenError."""


class FsgenError(Exception):
    """Base class of fsgen's errors."""


class ModelLoadError(FsgenError):
    """The model file is missing, unreadable, not GGUF, truncated, or llama.cpp refused it."""


class IncompatibleVocabError(FsgenError):
    """The models of a pair (or proxy triple) do not share one vocabulary."""


class TemplateError(FsgenError):
    """The model has no chat template, or llama.cpp does not support it."""


class ContextOverflowError(FsgenError):
    """The prompt does not fit in the context."""


class GenerationError(FsgenError):
    """Decoding failed, or the model produced non-finite logits."""


class InvalidArgumentError(FsgenError, ValueError):
    """A bad argument."""


__all__ = [
    "FsgenError",
    "ModelLoadError",
    "IncompatibleVocabError",
    "TemplateError",
    "ContextOverflowError",
    "GenerationError",
    "InvalidArgumentError",
]
