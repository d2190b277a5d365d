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


class PullError(FsgenError, RuntimeError):
    """A model could not be pulled, verified, removed or resolved (fsgen.hub)."""


class _MessageOnly:
    """KeyError and FileNotFoundError would repr() a lone message argument: print it as is."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownModelError(_MessageOnly, PullError, KeyError):
    """A name that is neither a known model nor a group. The message lists the known names."""


class ModelNotCachedError(_MessageOnly, PullError, FileNotFoundError):
    """A known model name whose file has not been pulled yet (run ``fsgen pull NAME``)."""


class ModelNotFoundError(_MessageOnly, PullError, FileNotFoundError):
    """A model argument that is neither an existing path nor a known model name."""


__all__ = [
    "FsgenError",
    "ModelLoadError",
    "IncompatibleVocabError",
    "TemplateError",
    "ContextOverflowError",
    "GenerationError",
    "InvalidArgumentError",
    "PullError",
    "UnknownModelError",
    "ModelNotCachedError",
    "ModelNotFoundError",
]
