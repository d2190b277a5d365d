"""The Python face of fsgen: Model and Pair.

Everything per token happens in the C++ core (fsgen._core); this module converts arguments and
waits for the core in short slices so Ctrl-C works. Which generation parameters exist, their
defaults and where they apply come from the core's table (fsgen._options).
"""
from __future__ import annotations

import atexit
import os
import pathlib
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from . import _core
from . import _options
from .calibration import Calibrator
from .planner import planner_figures
from ._results import Chunk, Drafts, Result, Source, Stats, Stream, Trace, run_job
from .errors import InvalidArgumentError

__all__ = ["Model", "Pair", "Result", "Stream", "Chunk", "Trace", "Drafts", "Source", "Stats"]

# At interpreter exit, stop every generation still running (a daemon thread's, or a stream never
# closed): a worker thread decoding while the process tears llama.cpp down would crash it.
atexit.register(_core.cancel_all_jobs, 10.0)

PathLike = Union[str, "os.PathLike[str]"]

# At interpreter exit, stop every generation still running (a daemon thread's, or a stream never
# closed): a worker thread decoding while the process tears llama.cpp down would crash it.
atexit.register(_core.cancel_all_jobs, 10.0)
_WAIT_SLICE = 0.1  # seconds between checks for KeyboardInterrupt

_MODEL_OPTION_NAMES = ("n_ctx", "n_threads", "n_gpu_layers", "n_batch", "verbose", "flash_attn")


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise InvalidArgumentError(f"{name} must be between {lo} and {hi}, got {value}")
    return int(value)


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if value != value:
        raise InvalidArgumentError(f"{name} must not be NaN")
    return value


def _model_options(n_ctx=4096, n_threads=None, n_gpu_layers=0, n_batch=512, verbose=False,
                   flash_attn=None) -> _core.ModelOptions:
    o = _core.ModelOptions()
    o.n_ctx = _int("n_ctx", n_ctx, 8, 1 << 24)
    o.n_threads = 0 if n_threads is None else _int("n_threads", n_threads, 1, 1024)
    o.n_gpu_layers = _int("n_gpu_layers", n_gpu_layers, -1, 1 << 20)
    o.n_batch = _int("n_batch", n_batch, 1, 1 << 16)
    o.verbose = bool(verbose)
    if flash_attn is not None and not isinstance(flash_attn, bool):
        raise InvalidArgumentError(f"flash_attn must be None (llama.cpp decides), True or False, got {flash_attn!r}")
    o.flash_attn = -1 if flash_attn is None else int(flash_attn)
    return o


def _calibration_options(o: _core.ModelOptions) -> dict:
    """The context options a cost curve depends on."""
    return {"n_ctx": o.n_ctx, "n_threads": o.n_threads, "n_gpu_layers": o.n_gpu_layers, "n_batch": o.n_batch,
            "flash_attn": o.flash_attn}


def _resolve_path(path: PathLike) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(f"a model path must be a str or os.PathLike, got {type(path).__name__}")
    text = os.fspath(path)
    if os.path.exists(text):
        return text
    from . import hub  # a pulled model's name
    if text in hub.known_names():
        return hub.resolve_model(text)
    return text  # the core says clearly that the file is missing


def _prompt_args(prompt, messages):
    if (prompt is None) == (messages is None):
        raise InvalidArgumentError("give exactly one of prompt or messages")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise InvalidArgumentError(f"prompt must be a str, got {type(prompt).__name__}")
        if not prompt:
            raise InvalidArgumentError("the prompt is empty")
        _check_utf8(prompt, "prompt")
        return prompt, None
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InvalidArgumentError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    pairs = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) \
                or not isinstance(message.get("content"), str):
            raise InvalidArgumentError(f"messages[{i}] must be a dict with str 'role' and 'content'")
        _check_utf8(message["content"], f"messages[{i}]['content']")
        pairs.append((message["role"], message["content"]))
    return None, pairs


def _check_utf8(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise InvalidArgumentError(f"{what} is not valid UTF-8 text: {exc.reason}") from None


class Model:
    """A GGUF model loaded once (weights memory-mapped), with its own context for generate().

    Parameters
    ----------
    path : str or os.PathLike
        A GGUF file, or the name of a pulled model (``fsgen models`` lists them).
    n_ctx : int, default 4096
        Context length of each context fsgen creates on this model.
    n_threads : int, optional
        Threads per context (default: the physical cores, at most 8).
    n_gpu_layers : int, default 0
        Layers offloaded to a GPU backend (-1: all).
    n_batch : int, default 512
        Logical and physical batch size.
    verbose : bool, default False
        Forward llama.cpp's log to stderr.
    flash_attn : bool, optional
        Flash attention on or off (default: llama.cpp decides).
    calibrate : bool, optional
        Measure this model's verify cost by batch size before its first n-gram drafting call
        (``draft="ngram"``; cached per file and machine). Default: ``$FSGEN_CALIBRATE`` (on
        unless ``0``).

    Raises
    ------
    ModelLoadError
        The file is missing, unreadable, not GGUF, truncated, or llama.cpp refused it.
    InvalidArgumentError
        A bad option.
    """

    def __init__(self, path: PathLike, *, n_ctx: int = 4096, n_threads: Optional[int] = None,
                 n_gpu_layers: int = 0, n_batch: int = 512, verbose: bool = False,
                 flash_attn: Optional[bool] = None, calibrate: Optional[bool] = None):
        options = _model_options(n_ctx, n_threads, n_gpu_layers, n_batch, verbose, flash_attn)
        self._options = dict(n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers, n_batch=n_batch,
                             verbose=verbose, flash_attn=flash_attn)
        self._core = _core.Model.load(_resolve_path(path), options)
        self.path = pathlib.Path(self._core.info["path"])
        self._calibrator = Calibrator(calibrate, [str(self.path)], _calibration_options(options), drafter=False)

    @property
    def info(self) -> dict:
        """Metadata: architecture, name, n_params, file_type, n_vocab, n_layer, chat_template, ..."""
        return self._core.info

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Token ids of ``text``.

        Parameters
        ----------
        text : str
        special : bool, default True
            Parse special tokens such as ``<|im_start|>`` into their ids. BOS is added when the
            model asks for it.

        Returns
        -------
        list of int
        """
        if not isinstance(text, str):
            raise InvalidArgumentError(f"text must be a str, got {type(text).__name__}")
        _check_utf8(text, "text")
        return list(self._core.tokenize(text, special))

    def detokenize(self, ids: Sequence[int]) -> str:
        """The text of token ids (correct UTF-8 across token boundaries, special tokens rendered)."""
        ids = [_int("token id", t, -(1 << 31), (1 << 31) - 1) for t in ids]
        return self._core.detokenize(ids)

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], *, add_assistant: bool = True) -> str:
        """``messages`` rendered with the model's chat template.

        Parameters
        ----------
        messages : list of dict
            ``{"role": str, "content": str}`` each.
        add_assistant : bool, default True
            End with the start of an assistant turn.

        Returns
        -------
        str

        Raises
        ------
        TemplateError
            The model has no chat template, or it cannot be rendered.
        """
        _, pairs = _prompt_args(None, messages)
        return self._core.apply_chat_template(pairs, add_assistant)

    def _start(self, prompt, messages, stream: bool, options: dict):
        text, pairs = _prompt_args(prompt, messages)
        core_options = _options.make_options(options, for_model=True)
        if options.get("draft") is not None:  # n-gram drafts: the verify cost curve first
            self._calibrator.prepare(self._core)
        return self._core.start(text, pairs, core_options, stream)

    @property
    def planner(self) -> dict:
        """What the n-gram draft planner learnt on this model: see :func:`fsgen.planner.planner_figures`."""
        return planner_figures(self._core.planner())

    def calibrate(self) -> dict:
        """Measure this model's verify cost for each batch size now (seconds on billion-parameter
        models), cache it, and return :attr:`planner`'s figures."""
        self._calibrator.run(self._core)
        return self.planner

    def generate(self, prompt=None, *, messages=None, **options) -> Result:
        return run_job(self._start(prompt, messages, False, options))

    def stream(self, prompt=None, *, messages=None, **options) -> Stream:
        return Stream(self._start(prompt, messages, True, options))

    def cancel(self) -> None:
        """Stop whatever this model's generate() is running at its next decode step."""
        self._core.cancel()

    def close(self) -> None:
        """Free the context and (once no Pair uses them) the weights."""
        self._core.close()

    @property
    def closed(self) -> bool:
        return self._core.closed

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "Model(closed)"
        return f"Model({str(self.path)!r}, {self.info['description']})"


class Pair:
    """A small model (System 1) and a large one (System 2) decoding together.

    Parameters
    ----------
    small, large : str, os.PathLike or Model
        GGUF paths, pulled models' names, or loaded Models (each role gets its own context;
        passing one file twice loads it once).
    small_base : str, os.PathLike or Model, optional
        The small model's base, for proxy tuning (``method="proxy"``, ``system2="proxy"``).
    calibrate : bool, optional
        Measure the large model's verify cost by batch size (and a System 1 step) before the first
        speculative call, cached per model files and machine. Default: ``$FSGEN_CALIBRATE`` (on
        unless ``0``).
    **model_options
        As :class:`Model` takes them (n_ctx, n_threads, n_gpu_layers, n_batch, verbose, flash_attn),
        for the models this Pair loads and for its contexts.

    Raises
    ------
    IncompatibleVocabError
        The models do not share one vocabulary.
    ModelLoadError, InvalidArgumentError
        As for :class:`Model`.
    """

    def __init__(self, small: Union[PathLike, Model], large: Union[PathLike, Model], *,
                 small_base: Union[PathLike, Model, None] = None, calibrate: Optional[bool] = None,
                 **model_options):
        unknown = set(model_options) - set(_MODEL_OPTION_NAMES)
        if unknown:
            raise InvalidArgumentError(f"unknown option(s) {', '.join(sorted(unknown))}; "
                                       f"expected {', '.join(_MODEL_OPTION_NAMES)}")
        options = _model_options(**model_options)
        self._owned: list[Model] = []
        loaded: dict[str, Model] = {}

        def model(arg) -> Model:
            if isinstance(arg, Model):
                return arg
            path = _resolve_path(arg)
            key = os.path.realpath(path)
            if key not in loaded:  # one load per file, whatever roles it plays
                loaded[key] = Model(path, **model_options)
                self._owned.append(loaded[key])
            return loaded[key]

        try:
            self.small = model(small)
            self.large = model(large)
            self.small_base = model(small_base) if small_base is not None else None
            self._core = _core.Pair(self.small._core, self.large._core,
                                    self.small_base._core if self.small_base else None, options)
            self._calibrator = Calibrator(calibrate, [str(self.small.path), str(self.large.path)],
                                          _calibration_options(options), drafter=True)
        except BaseException:
            for m in self._owned:
                m.close()
            raise

    def _start(self, prompt, messages, stream: bool, options: dict):
        text, pairs = _prompt_args(prompt, messages)
        core_options = _options.make_options(options, for_model=False)
        method = options.get("method") or "speculative"
        if method == "speculative" or (method == "large" and options.get("draft") is not None):
            self._calibrator.prepare(self._core)  # the large model's verify cost curve
        return self._core.start(text, pairs, core_options, stream)

    @property
    def planner(self) -> dict:
        """What the speculative draft planner learnt on this pair: measured verify costs by batch
        size, the draft step's cost, the calibration, acceptance estimates and the draft lengths it
        would choose now (see :func:`fsgen.planner.planner_figures`)."""
        return planner_figures(self._core.planner())

    def calibrate(self) -> dict:
        """Measure the large model's verify cost for each batch size and a System 1 step now
        (seconds on billion-parameter models), cache them, and return :attr:`planner`'s figures."""
        self._calibrator.run(self._core)
        return self.planner

    def generate(self, prompt=None, *, messages=None, **options) -> Result:
        return run_job(self._start(prompt, messages, False, options))

    def stream(self, prompt=None, *, messages=None, **options) -> Stream:
        return Stream(self._start(prompt, messages, True, options))

    def cancel(self) -> None:
        """Stop whatever this pair is running at its next decode step."""
        self._core.cancel()

    def close(self) -> None:
        """Free the pair's contexts and the models it loaded."""
        self._core.close()
        for m in self._owned:
            m.close()

    def __enter__(self) -> "Pair":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        base = f", small_base={self.small_base!r}" if self.small_base else ""
        return f"Pair(small={self.small!r}, large={self.large!r}{base})"


def _document(cls, for_model: bool) -> None:
    """Signatures and docstrings of generate/stream from the core's parameter table."""
    who = "this model alone" if for_model else "the pair, with the chosen method"
    for name, summary, returns in (
            ("generate", f"Generate text with {who}.", "Result\n    Text, tokens, finish_reason, stats and the optional trace."),
            ("stream", f"Generate text with {who}, streaming Chunks as they are produced.",
             "Stream\n    Iterate for Chunk(text, source, token); ``stream.result`` afterwards.")):
        function = getattr(cls, name)
        function.__signature__ = _options.signature(for_model)
        function.__doc__ = _options.docstring(summary, for_model, returns)


_document(Model, for_model=True)
_document(Pair, for_model=False)
