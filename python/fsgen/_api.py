"""The Python face of fsgen: Model and Pair.

Everything per token happens in the C++ core (fsgen._core); this module hands it checked arguments
(fsgen._arguments) and waits for it in short slices so Ctrl-C works (fsgen._results). Which
generation parameters exist, their defaults and where they apply come from the core's table
(fsgen._options).
"""
from __future__ import annotations

import atexit
import os
import pathlib
import types
from typing import Any, Mapping, Optional, Sequence, Union

from . import _core
from . import _arguments
from . import _options
from .calibration import Calibrator, TableSource, table_dict
from .planner import planner_figures
from ._arguments import PathLike
from ._results import Chunk, Drafts, Result, Source, Stats, Stream, Trace, run_job
from .errors import InvalidArgumentError

__all__ = ["Model", "Pair", "Result", "Stream", "Chunk", "Trace", "Drafts", "Source", "Stats"]

# At interpreter exit, stop every generation still running (a daemon thread's, or a stream never
# closed): a worker thread decoding while the process tears llama.cpp down would crash it.
atexit.register(_core.cancel_all_jobs, 10.0)


class _Runner:
    """What Model and Pair share: starting a generation (calibration where the core's plan of the
    call needs it, the core's job), the draft planner, cancel and close. Subclasses set
    ``_for_model``."""

    _for_model: bool  # which of the core's parameter sets generate() takes
    _core: Any
    _calibrator: Calibrator

    def _start(self, prompt, messages, stream: bool, options: dict):
        text, pairs = _arguments.prompt_args(prompt, messages)
        core_options = _options.make_options(options, for_model=self._for_model)
        plan = _core.plan_for(core_options, self._for_model)
        if plan["needs_calibration"] and self._calibrator.pending(self._core):
            self._core.check(text, pairs, core_options)  # a call that cannot start costs no calibration
            self._calibrator.prepare(self._core)
        return self._core.start(text, pairs, core_options, stream)  # checks the call, then runs it

    def validate(self, prompt=None, *, messages=None, **options) -> None:
        """Check a call's arguments as :meth:`generate` and :meth:`stream` do, without generating.

        Parameters
        ----------
        prompt : str, optional
        messages : list of dict, optional
            Exactly one of them, as :meth:`generate` takes them.
        **options
            Generation parameters, as :meth:`generate` takes them.

        Raises
        ------
        InvalidArgumentError
            What :meth:`generate` raises for these arguments: not exactly one of prompt and
            messages, an empty or malformed prompt, an unknown parameter, a wrong type or value, or
            a method parameter that does not apply.
        """
        text, pairs = _arguments.prompt_args(prompt, messages)
        self._core.check(text, pairs, _options.make_options(options, for_model=self._for_model))

    @property
    def planner(self) -> dict:
        """What the draft planner learnt: measured verify costs by batch size, a System 1 draft
        step's cost (a Pair), the calibration, acceptance estimates and the draft lengths it would
        choose now (see :func:`fsgen.planner.planner_figures`)."""
        return planner_figures(self._core.planner())

    @property
    def cost_table(self) -> dict:
        """The cost table the next generation prices from: ``id`` (what ``Result.cost_table``
        names), ``kind`` ("measured", "builtin" or "pinned"), ``verify_seconds`` (rows -> seconds)
        and ``draft_seconds`` (a System 1 step; None on a Model)."""
        return table_dict(self._core.cost_table())

    def calibrate(self, *, cached: bool = False) -> dict:
        """Measure the verifying model's cost for each batch size (and, on a Pair, a System 1 step)
        now (seconds on billion-parameter models) and cache it; the measured table replaces a
        pinned or built-in one.

        Parameters
        ----------
        cached : bool, default False
            Take the cost curve from the cache where it holds one for these models, options and
            machine (measure only otherwise): what a server does before it reports ready, so that
            no request waits for a calibration.

        Returns
        -------
        dict
            :attr:`planner`'s figures, with the measured cost table's ``id``, ``kind``,
            ``verify_seconds``, ``draft_seconds``, ``sampling_seconds`` and ``catch_up_seconds``
            (:attr:`cost_table`; what ``fsgen calibrate --save`` writes) in place of the figures'
            keys of those names.
        """
        self._calibrator.run(self._core, cached=cached)
        return {**self.planner, **self.cost_table}

    @property
    def calibration_enabled(self) -> bool:
        """Whether calls calibrate the verify cost curve where they need it (``calibrate=`` or
        ``$FSGEN_CALIBRATE``)."""
        return self._calibrator.enabled

    def generate(self, prompt=None, *, messages=None, **options) -> Result:
        return run_job(self._start(prompt, messages, False, options))

    def stream(self, prompt=None, *, messages=None, **options) -> Stream:
        return Stream(self._start(prompt, messages, True, options))

    def cancel(self) -> None:
        """Stop whatever this model or pair is running at its next decode step."""
        self._core.cancel()

    def close(self) -> None:
        """Free the contexts, and the weights no other Model or Pair uses."""
        self._core.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Model(_Runner):
    """A GGUF model loaded once (weights memory-mapped), with its own context for generate().

    Parameters
    ----------
    path : str or os.PathLike
        A GGUF file, or the name of a pulled model (``fsgen models`` lists them).
    n_ctx : int, default 4096
        Context length of each context fsgen creates on this model.
    n_threads : int, optional
        Threads per context (None or 0: the physical cores, at most 8).
    n_gpu_layers : int, optional
        Layers offloaded to a GPU backend (-1: all). Default: 0, or all with ``rpc``.
    n_batch : int, default 512
        Logical and physical batch size.
    verbose : bool, default False
        Forward llama.cpp's log to stderr.
    flash_attn : bool, optional
        Flash attention on or off (default: llama.cpp decides).
    prompt_cache_mib : int, default 256
        Host memory per context for the KV state of prompts the context moved away from: a prompt
        seen before (another conversation, the same prompt sampled after greedy) is restored
        instead of read again. 0: off.
    rpc : list of str, optional
        ``["host:port", ...]`` of ``fsgen rpc-server``s: the model runs there, held by a helper
        process this one owns (llama.cpp's RPC client would end this process on a network failure).
    rpc_timeout : float, default 60
        Seconds a call may wait for progress (per ``n_batch`` chunk); past it (or when the server goes away) the
        call raises GenerationError and the model is lost (``Pair.reload_large()``).
    calibrate : bool, dict, str or path, optional
        True: measure this model's verify cost by batch size before its first n-gram drafting call
        (``draft="ngram"``; cached per file and machine). False: the fixed built-in cost table. A
        cost table (a dict as :attr:`cost_table` gives, or the path of one saved as JSON by
        ``fsgen calibrate --save``): pinned, nothing measured or updated. Default:
        ``$FSGEN_CALIBRATE`` (on unless ``0``).

    Raises
    ------
    ModelLoadError
        The file is missing, unreadable, not GGUF, truncated, or llama.cpp refused it.
    InvalidArgumentError
        A bad option.
    """

    _for_model = True

    def __init__(self, path: PathLike, *, n_ctx: int = 4096, n_threads: Optional[int] = None,
                 n_gpu_layers: Optional[int] = None, n_batch: int = 512, verbose: bool = False,
                 flash_attn: Optional[bool] = None, rpc: Optional[Sequence[str]] = None,
                 rpc_timeout: float = 60.0, calibrate: TableSource = None, prompt_cache_mib: int = 256):
        options = _arguments.model_options(n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers, n_batch=n_batch,
                                           verbose=verbose, flash_attn=flash_attn, prompt_cache_mib=prompt_cache_mib,
                                           rpc=rpc, rpc_timeout=rpc_timeout)
        self._rpc = list(options.rpc)
        self._core = _core.Model.load(_arguments.resolve_path(path), options)
        self.path = pathlib.Path(self._core.info["path"])
        self._calibrator = Calibrator(calibrate, [str(self.path)], _arguments.calibration_options(options),
                                      drafter=False)
        self._calibrator.attach(self._core)

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
        _arguments.check_utf8(text, "text")
        return list(self._core.tokenize(text, special))

    def detokenize(self, ids: Sequence[int]) -> str:
        """The text of token ids (correct UTF-8 across token boundaries, special tokens rendered)."""
        ids = [_arguments.check_int("token id", t, -(1 << 31), (1 << 31) - 1) for t in ids]
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
        _, pairs = _arguments.prompt_args(None, messages)
        if pairs is None:
            raise InvalidArgumentError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
        return self._core.apply_chat_template(pairs, add_assistant)

    def rpc_stats(self) -> Optional[dict]:
        """For a model on RPC servers (rpc=...): endpoints, lost, evals, rows, round_trip_seconds,
        helper_seconds and overhead_per_eval (what the helper process adds to each call, in seconds);
        None for a model in this process."""
        return self._core.rpc_stats()

    @property
    def closed(self) -> bool:
        return self._core.closed

    def __repr__(self) -> str:
        if self.closed:
            return "Model(closed)"
        return f"Model({str(self.path)!r}, {self.info['description']})"


class Pair(_Runner):
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
        Seconds the remote large model may go without progress (each ``n_batch`` chunk of an eval counts).
    calibrate : bool, dict, str or path, optional
        True: measure the large model's verify cost by batch size (and a System 1 step) before the
        first call that prices drafts or fs's guard, cached per model files and machine. False: the
        fixed built-in cost table. A cost table (a dict as :attr:`cost_table` gives, or the path of
        one saved as JSON by ``fsgen calibrate --save``): pinned, nothing measured or updated.
        Default: ``$FSGEN_CALIBRATE`` (on unless ``0``).
    **model_options
        As :class:`Model` takes them (n_ctx, n_threads, n_gpu_layers, n_batch, verbose, flash_attn,
        prompt_cache_mib),
        for the models this Pair loads and for its contexts.

    Any two models pair. Where their tokenizers differ the pair is *translated* (:attr:`vocab`):
    speculative decoding drafts across the tokenizers (``cross_vocab``) and stays lossless; fs and
    oracle with ``system2="large"`` meet in text (output in the large model's tokens); small and
    large work; the methods that combine the models' scores token by token (contrastive, proxy,
    ``system2="contrastive" | "proxy"``) raise IncompatibleVocabError when called.

    Raises
    ------
    IncompatibleVocabError
        ``small_base`` does not share the small model's vocabulary.
    ModelLoadError, InvalidArgumentError
        As for :class:`Model`.
    """

    _for_model = False

    def __init__(self, small: Union[PathLike, Model], large: Union[PathLike, Model], *,
                 small_base: Union[PathLike, Model, None] = None, large_rpc: Optional[Sequence[str]] = None,
                 rpc_timeout: float = 60.0, calibrate: TableSource = None, **model_options):
        if large_rpc is not None and isinstance(large, Model):
            raise InvalidArgumentError("large_rpc applies when the Pair loads the large model from a path; "
                                       "an already loaded Model keeps its own rpc (Model(path, rpc=[...]))")
        unknown = set(model_options) - set(_arguments.MODEL_OPTION_NAMES)
        if unknown:
            raise InvalidArgumentError(f"unknown option(s) {', '.join(sorted(unknown))}; "
                                       f"expected {', '.join(_arguments.MODEL_OPTION_NAMES)}")
        options = _arguments.model_options(**model_options)
        self._owned: list[Model] = []
        loaded: dict[str, Model] = {}

        def model(arg, rpc=None) -> Model:
            if isinstance(arg, Model):
                return arg
            path = _arguments.resolve_path(arg)
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
            places = dict(_arguments.calibration_options(options),  # System 2 on RPC servers: cached per endpoint
                          rpc=[self.small._rpc, self.large._rpc])
            self._calibrator = Calibrator(calibrate, [str(self.small.path), str(self.large.path)],
                                          places, drafter=True)
            self._calibrator.attach(self._core)
        except BaseException:
            for m in self._owned:
                m.close()
            raise

    @property
    def vocab(self) -> dict:
        """How the vocabularies relate: ``{"kind": "shared" | "translated", "overlap": float,
        "shared_tokens": int}``. Translated: the tokenizers differ; overlap is the share of tokens
        both hold (the same decoded bytes), shared / (small + large - shared)."""
        return self._core.vocab

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], *,
                            add_assistant: bool = True) -> dict:
        """Each model's own chat template for ``messages``: ``{"small": str, "large": str}``. With
        ``messages=`` a translated pair's models read their own renderings; the large model's
        decides the output. Raises TemplateError as :meth:`Model.apply_chat_template`."""
        _, pairs = _arguments.prompt_args(None, messages)
        if pairs is None:
            raise InvalidArgumentError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
        small, large = self._core.apply_chat_template(pairs, add_assistant)
        return {"small": small, "large": large}

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
        super().close()
        for m in self._owned:
            m.close()

    def __repr__(self) -> str:
        base = f", small_base={self.small_base!r}" if self.small_base else ""
        return f"Pair(small={self.small!r}, large={self.large!r}{base})"


def _document(cls, for_model: bool) -> None:
    """Signatures and docstrings of generate/stream from the core's parameter table, on the class's
    own copy of the shared function (Model's and Pair's take different parameters)."""
    who = "this model alone" if for_model else "the pair, with the chosen method"
    for name, summary, returns in (
            ("generate", f"Generate text with {who}.", "Result\n    Text, tokens, finish_reason, stats and the optional trace."),
            ("stream", f"Generate text with {who}, streaming Chunks as they are produced.",
             "Stream\n    Iterate for Chunk(text, source, token, draft); ``stream.result`` afterwards.")):
        shared = getattr(_Runner, name)
        function = types.FunctionType(shared.__code__, shared.__globals__, name, shared.__defaults__,
                                      shared.__closure__)
        function.__kwdefaults__ = shared.__kwdefaults__
        function.__qualname__ = f"{cls.__name__}.{name}"
        function.__signature__ = _options.signature(for_model)
        function.__doc__ = _options.docstring(summary, for_model, returns)
        setattr(cls, name, function)


_document(Model, for_model=True)
_document(Pair, for_model=False)
