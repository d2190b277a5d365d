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


def _rpc_options(o: _core.ModelOptions, rpc, rpc_timeout, n_gpu_layers_given: bool) -> None:
    """Puts a remote model's servers into the core's options (a model on RPC servers runs in a
    helper process fsgen owns: see docs/API.md)."""
    if rpc is None:
        return
    if isinstance(rpc, str):
        rpc = [rpc]
    if not isinstance(rpc, (list, tuple)) or not rpc or not all(isinstance(e, str) for e in rpc):
        raise InvalidArgumentError(f"rpc must be a non-empty list of \"host:port\" strings, got {rpc!r}")
    o.rpc = list(rpc)
    o.rpc_timeout = _float("rpc_timeout", rpc_timeout)
    if not o.rpc_timeout > 0:
        raise InvalidArgumentError(f"rpc_timeout must be > 0 seconds, got {rpc_timeout}")
    if not n_gpu_layers_given:
        o.n_gpu_layers = -1  # rpc implies every layer on the servers


def _calibration_options(o: _core.ModelOptions) -> dict:
    """The context options a cost curve depends on."""
    return {"n_ctx": o.n_ctx, "n_threads": o.n_threads, "n_gpu_layers": o.n_gpu_layers, "n_batch": o.n_batch,
            "flash_attn": o.flash_attn, "rpc": list(o.rpc)}  # a remote model's costs are its endpoint's


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
    n_gpu_layers : int, optional
        Layers offloaded to a GPU backend (-1: all). Default: 0, or all with ``rpc``.
    n_batch : int, default 512
        Logical and physical batch size.
    verbose : bool, default False
        Forward llama.cpp's log to stderr.
    flash_attn : bool, optional
        Flash attention on or off (default: llama.cpp decides).
    rpc : list of str, optional
        ``["host:port", ...]`` of ``fsgen rpc-server``s: the model runs there, held by a helper
        process this one owns (llama.cpp's RPC client would end this process on a network failure).
    rpc_timeout : float, default 60
        Seconds any call to the remote model may take; past it (or when the server goes away) the
        call raises GenerationError and the model is lost (``Pair.reload_large()``).
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
                 n_gpu_layers: Optional[int] = None, n_batch: int = 512, verbose: bool = False,
                 flash_attn: Optional[bool] = None, rpc: Optional[Sequence[str]] = None,
                 rpc_timeout: float = 60.0, calibrate: Optional[bool] = None):
        options = _model_options(n_ctx, n_threads, 0 if n_gpu_layers is None else n_gpu_layers, n_batch, verbose,
                                 flash_attn)
        _rpc_options(options, rpc, rpc_timeout, n_gpu_layers is not None)
        self._options = dict(n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers, n_batch=n_batch,
                             verbose=verbose, flash_attn=flash_attn)
        self._rpc = list(options.rpc)
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
        """The prompt text that ``messages`` become through the model's chat template.

        The GGUF's own Jinja template, rendered in the C++ core by llama.cpp's Jinja engine (as
        Hugging Face transformers renders it); llama.cpp's built-in templates are the fallback for
        a template that engine cannot parse or run.

        Parameters
        ----------
        messages : list of dict
            ``{"role": str, "content": str}`` each.
        add_assistant : bool, default True
            The template's ``add_generation_prompt``: end with the start of an assistant turn.

        Returns
        -------
        str
            The prompt (a BOS the tokenizer adds anyway is left out).

        Raises
        ------
        TemplateError
            The model has no template, the template refused the messages (``raise_exception``,
            with its message), or it failed to render (with the engine's message).
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

    def rpc_stats(self) -> Optional[dict]:
        """For a model on RPC servers (rpc=...): endpoints, lost, evals, rows, round_trip_seconds,
        helper_seconds and overhead_per_eval (what the helper process adds to each call, in seconds);
        None for a model in this process."""
        return self._core.rpc_stats()

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
    large_rpc : list of str, optional
        ``["host:port", ...]``: System 2 (only the large model) runs on those ``fsgen rpc-server``s,
        held by a helper process this one owns. When System 2 is lost (server gone, link stalled),
        System 1 keeps working and ``large_lost`` is True until ``reload_large()``. With an already
        loaded ``large`` Model its own ``rpc`` decides (``large_rpc`` is then an error).
    rpc_timeout : float, default 60
        Seconds any call to the remote large model may take.
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
                 small_base: Union[PathLike, Model, None] = None, large_rpc: Optional[Sequence[str]] = None,
                 rpc_timeout: float = 60.0, calibrate: Optional[bool] = None, **model_options):
        if large_rpc is not None and isinstance(large, Model):
            raise InvalidArgumentError("large_rpc applies when the Pair loads the large model from a path; "
                                       "an already loaded Model keeps its own rpc (Model(path, rpc=[...]))")
        unknown = set(model_options) - set(_MODEL_OPTION_NAMES)
        if unknown:
            raise InvalidArgumentError(f"unknown option(s) {', '.join(sorted(unknown))}; "
                                       f"expected {', '.join(_MODEL_OPTION_NAMES)}")
        options = _model_options(**model_options)
        self._owned: list[Model] = []
        loaded: dict[str, Model] = {}

        def model(arg, rpc=None) -> Model:
            if isinstance(arg, Model):
                return arg
            path = _resolve_path(arg)
            key = (os.path.realpath(path), tuple(rpc or ()))
            if key not in loaded:  # one load per file and place, whatever roles it plays
                remote = dict(rpc=rpc, rpc_timeout=rpc_timeout) if rpc is not None else {}
                loaded[key] = Model(path, **model_options, **remote)
                self._owned.append(loaded[key])
            return loaded[key]

        try:
            self.small = model(small)
            self.large = model(large, large_rpc)
            self.small_base = model(small_base) if small_base is not None else None
            self._core = _core.Pair(self.small._core, self.large._core,
                                    self.small_base._core if self.small_base else None, options)
            places = dict(_calibration_options(options),  # System 2 on RPC servers: cached per endpoint
                          rpc=[self.small._rpc, self.large._rpc])
            self._calibrator = Calibrator(calibrate, [str(self.small.path), str(self.large.path)],
                                          places, drafter=True)
        except BaseException:
            for m in self._owned:
                m.close()
            raise

    def _start(self, prompt, messages, stream: bool, options: dict):
        text, pairs = _prompt_args(prompt, messages)
        core_options = _options.make_options(options, for_model=False)
        method = options.get("method") or "speculative"
        guarded_fs = method == "fs" and options.get("guard") is not False  # the guard weighs the large model's cost
        if method == "speculative" or (method == "large" and options.get("draft") is not None) or guarded_fs:
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

    @property
    def large_lost(self) -> bool:
        """True when the large model runs on RPC servers and a call to it failed (System 2 is
        unavailable until reload_large(); System 1 still generates)."""
        return self._core.large_lost

    def reload_large(self) -> None:
        """Loads the remote large model again (after a loss: a restarted server has lost the weights).

        Raises
        ------
        ModelLoadError
            The server still does not answer, or loading failed.
        InvalidArgumentError
            The large model is not on RPC servers.
        """
        self._core.reload_large()

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
             "Stream\n    Iterate for Chunk(text, source, token, draft); ``stream.result`` afterwards.")):
        function = getattr(cls, name)
        function.__signature__ = _options.signature(for_model)
        function.__doc__ = _options.docstring(summary, for_model, returns)


_document(Model, for_model=True)
_document(Pair, for_model=False)
