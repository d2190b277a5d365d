"""The Python face of fsgen: Model, Pair, Result, Trace, Stream.

Everything per token happens in the C++ core (fsgen._core); this module converts arguments,
checks them, and waits for the core in short slices so Ctrl-C works.
"""
from __future__ import annotations

import atexit
import os
import pathlib
import threading
from typing import Any, Iterator, NamedTuple, Optional, Sequence, Union

import numpy as np

from . import _core
from .errors import InvalidArgumentError

PathLike = Union[str, "os.PathLike[str]"]

# At interpreter exit, stop every generation still running (a daemon thread's, or a stream never
# closed): a worker thread decoding while the process tears llama.cpp down would crash it.
atexit.register(_core.cancel_all_jobs, 10.0)
_WAIT_SLICE = 0.1  # seconds between checks for KeyboardInterrupt

_MODEL_OPTION_NAMES = ("n_ctx", "n_threads", "n_gpu_layers", "n_batch", "verbose")

# Method parameters and their defaults (../shared/API.md).
_ROUTED = {"router": "entropy", "threshold": None, "system2": "large", "alpha": None, "beta": 0.5,
           "variant": "standard"}
METHOD_PARAMS: dict[str, dict[str, Any]] = {
    "small": {"draft": None, "draft_max": None},
    "large": {"draft": None, "draft_max": None},
    "speculative": {"draft": "auto", "draft_max": None, "draft_p_min": 0.0},
    "contrastive": {"alpha": 0.1, "beta": 0.5, "variant": "standard"},
    "proxy": {"alpha": 1.0},
    "fs": dict(_ROUTED),
    "oracle": dict(_ROUTED),
}


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


def _model_options(n_ctx=4096, n_threads=None, n_gpu_layers=0, n_batch=512, verbose=False) -> _core.ModelOptions:
    o = _core.ModelOptions()
    o.n_ctx = _int("n_ctx", n_ctx, 8, 1 << 24)
    o.n_threads = 0 if n_threads is None else _int("n_threads", n_threads, 1, 1024)
    o.n_gpu_layers = _int("n_gpu_layers", n_gpu_layers, -1, 1 << 20)
    o.n_batch = _int("n_batch", n_batch, 1, 1 << 16)
    o.verbose = bool(verbose)
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
    try:  # a pulled model's name
        from . import hub
        if text in hub.known_names():
            return hub.resolve_model(text)
    except ImportError:
        pass
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


def _generate_options(method: str, *, max_tokens=256, temperature=0.0, top_k=40, top_p=0.95, min_p=0.05, seed=0,
                      stop=None, trace=False, **method_params) -> _core.GenerateOptions:
    if method not in METHOD_PARAMS:
        raise InvalidArgumentError(f"unknown method {method!r}; expected one of {', '.join(METHOD_PARAMS)}")
    allowed = METHOD_PARAMS[method]
    unknown = sorted(set(method_params) - set(allowed))
    if unknown:
        hint = ", ".join(allowed) or "none"
        raise InvalidArgumentError(f"method {method!r} takes no parameter {', '.join(unknown)} (its parameters: {hint})")
    params = {**allowed, **method_params}

    o = _core.GenerateOptions()
    o.method = method
    o.max_tokens = _int("max_tokens", max_tokens, 0, 1 << 24)
    o.temperature = _float("temperature", temperature)
    o.top_k = _int("top_k", top_k, -1, (1 << 31) - 1) if top_k is not None else 0
    o.top_p = _float("top_p", top_p)
    o.min_p = _float("min_p", min_p)
    o.seed = _int("seed", seed, 0, (1 << 64) - 1)
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    elif isinstance(stop, (list, tuple)):
        stop = list(stop)
    else:
        raise InvalidArgumentError(f"stop must be a string or a list of strings, got {type(stop).__name__}")
    if not all(isinstance(s, str) and s for s in stop):
        raise InvalidArgumentError("stop must be a non-empty string or a list of them")
    o.stop = list(stop)
    o.trace = bool(trace)

    if method in ("speculative", "small", "large"):
        draft = params["draft"]
        o.draft = "none" if draft is None else _name("draft", draft)
        draft_max = params["draft_max"]
        o.draft_max = 0 if draft_max is None else _int("draft_max", draft_max, 1, 64)
    if method == "speculative":
        o.draft_p_min = _float("draft_p_min", params["draft_p_min"])
    if method in ("fs", "oracle"):
        o.router = _name("router", params["router"])
        o.system2 = _name("system2", params["system2"])
        if params["threshold"] is not None:
            o.threshold = _float("threshold", params["threshold"])
    system2 = o.system2 if method in ("fs", "oracle") else method
    alpha = params.get("alpha")
    if system2 == "contrastive":
        o.contrastive_alpha = _float("alpha", 0.1 if alpha is None else alpha)
        o.contrastive_beta = _float("beta", params["beta"])
        o.contrastive_variant = _name("variant", params["variant"])
    elif system2 == "proxy" and alpha is not None:
        o.proxy_alpha = _float("alpha", alpha)
    o.validate()
    return o


def _name(what: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be a str, got {value!r}")
    return value


class Drafts:
    """Per speculative round: the draft tokens System 2 judged (``length``), how many of them it
    accepted, and who drafted them (``source``: 1 System 1, 2 n-gram lookup)."""

    def __init__(self, length: np.ndarray, accepted: np.ndarray, source: Optional[np.ndarray] = None):
        self.length = length
        self.accepted = accepted
        self.source = source if source is not None else np.ones(len(length), dtype=np.int8)

    def __len__(self) -> int:
        return len(self.length)

    def __repr__(self) -> str:
        return f"Drafts(rounds={len(self)}, drafted={int(self.length.sum())}, accepted={int(self.accepted.sum())})"


class Trace:
    """One row per generated token; see API.md for the fields."""

    FIELDS = ("token", "source", "entropy", "top1", "margin", "system2_called", "mismatch", "text_offset",
              "draft_source")

    def __init__(self, arrays: dict):
        self.token = arrays["token"]
        self.source = arrays["source"]
        self.entropy = arrays["entropy"]
        self.top1 = arrays["top1"]
        self.margin = arrays["margin"]
        self.system2_called = arrays["system2_called"].view(np.bool_)
        self.mismatch = arrays["mismatch"].view(np.bool_)
        self.text_offset = arrays["text_offset"]
        # 0 not a draft token, 1 an accepted draft of System 1's, 2 an accepted n-gram draft.
        self.draft_source = arrays["draft_source"]
        self.drafts = Drafts(arrays["draft_length"], arrays["draft_accepted"], arrays["draft_round_source"])

    def __len__(self) -> int:
        return len(self.token)

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}

    def __repr__(self) -> str:
        return f"Trace(tokens={len(self)}, system2={int((self.source != 0).sum())}, mismatches={int(self.mismatch.sum())})"


class Result:
    """What a generation returns."""

    __slots__ = ("text", "tokens", "finish_reason", "stats", "trace")

    def __init__(self, core_result):
        self.text: str = core_result.text
        self.tokens: list[int] = list(core_result.tokens)
        self.finish_reason: str = core_result.finish_reason
        self.stats: dict = core_result.stats
        self.trace: Optional[Trace] = Trace(core_result.take_trace()) if core_result.has_trace else None

    def __repr__(self) -> str:
        text = self.text if len(self.text) < 60 else self.text[:57] + "..."
        return f"Result(text={text!r}, n_tokens={len(self.tokens)}, finish_reason={self.finish_reason!r})"


class Chunk(NamedTuple):
    """A piece of streamed text; source: 0 System 1, 1 System 2 alone, 2 both combined."""

    text: str
    source: int
    token: int


class Stream:
    """Iterate to get Chunks as they are produced; afterwards `result` holds the Result.

    cancel() (from any thread) stops the generation at its next decode step; leaving the
    iteration early frees its work.
    """

    def __init__(self, job):
        self._job = job
        self._chunks: Optional[Iterator[Chunk]] = None  # for next(stream)
        self.result: Optional[Result] = None

    def __next__(self) -> Chunk:
        if self._chunks is None:
            self._chunks = self._iterate(close_when_left=False)
        return next(self._chunks)

    def __iter__(self) -> Iterator[Chunk]:
        # A generator: leaving a for-loop early drops it, and its `finally` frees the work.
        return self._iterate(close_when_left=True)

    def _iterate(self, close_when_left: bool) -> Iterator[Chunk]:
        job = self._job
        finished = False
        try:
            while job is not None and self._job is not None:
                chunk = job.next_chunk(_WAIT_SLICE)
                if chunk is not None:
                    yield Chunk(chunk.text, chunk.source, chunk.token)
                elif job.done():
                    self._job = None
                    finished = True
                    self.result = Result(job.take_result())
                    return
        finally:
            if not finished and close_when_left:
                self.close()

    def cancel(self) -> None:
        job = self._job
        if job is not None:
            job.cancel()

    def close(self) -> None:
        """Stop and free the generation (also when the iteration is left early)."""
        job, self._job = self._job, None
        if job is not None:
            job.cancel()
            try:
                self.result = Result(job.take_result())
            except Exception:
                pass

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()


def _run(job) -> Result:
    try:
        while not job.wait(_WAIT_SLICE):
            pass
    except KeyboardInterrupt:
        job.cancel()  # stops at the next decode step; the pair stays usable
        job.wait(60.0)
        raise
    return Result(job.take_result())


class Model:
    """A GGUF model loaded once (weights memory-mapped), with its own context for generate()."""

    def __init__(self, path: PathLike, *, n_ctx: int = 4096, n_threads: Optional[int] = None,
                 n_gpu_layers: int = 0, n_batch: int = 512, verbose: bool = False, calibrate: Optional[bool] = None):
        options = _model_options(n_ctx, n_threads, n_gpu_layers, n_batch, verbose)
        self._options = dict(n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers, n_batch=n_batch,
                             verbose=verbose)
        self._core = _core.Model.load(_resolve_path(path), options)
        self.path = pathlib.Path(self._core.info["path"])
        from .calibration import Calibrator
        # calibrate: measure verify costs before the first n-gram drafting (None: $FSGEN_CALIBRATE).
        self._calibrator = Calibrator(calibrate, [str(self.path)], _calibration_options(options), drafter=False)

    @property
    def info(self) -> dict:
        """Metadata: architecture, name, n_params, file_type, n_vocab, n_layer, chat_template, ..."""
        return self._core.info

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        if not isinstance(text, str):
            raise InvalidArgumentError(f"text must be a str, got {type(text).__name__}")
        _check_utf8(text, "text")
        return list(self._core.tokenize(text, special))

    def detokenize(self, ids: Sequence[int]) -> str:
        ids = [_int("token id", t, -(1 << 31), (1 << 31) - 1) for t in ids]
        return self._core.detokenize(ids)

    def apply_chat_template(self, messages: list[dict], *, add_assistant: bool = True) -> str:
        _, pairs = _prompt_args(None, messages)
        return self._core.apply_chat_template(pairs, add_assistant)

    def _start(self, prompt, messages, stream: bool, **kwargs):
        text, pairs = _prompt_args(prompt, messages)
        options = _generate_options("small", **kwargs)
        return self._core.start(text, pairs, options, stream)

    def generate(self, prompt: Optional[str] = None, *, messages: Optional[list[dict]] = None, max_tokens: int = 256,
                 temperature: float = 0.0, top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05, seed: int = 0,
                 stop: Union[str, Sequence[str], None] = None, trace: bool = False, draft: Optional[str] = None,
                 draft_max: Optional[int] = None) -> Result:
        """draft="ngram": draft tokens looked up in the prompt and the output so far, verified by
        this model in one batch (same output, greedy or sampled; faster where text repeats)."""
        self._prepare(draft)
        return _run(self._start(prompt, messages, False, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                                top_p=top_p, min_p=min_p, seed=seed, stop=stop, trace=trace, draft=draft,
                                draft_max=draft_max))

    def stream(self, prompt: Optional[str] = None, *, messages: Optional[list[dict]] = None, max_tokens: int = 256,
               temperature: float = 0.0, top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05, seed: int = 0,
               stop: Union[str, Sequence[str], None] = None, trace: bool = False, draft: Optional[str] = None,
               draft_max: Optional[int] = None) -> Stream:
        self._prepare(draft)
        return Stream(self._start(prompt, messages, True, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                                  top_p=top_p, min_p=min_p, seed=seed, stop=stop, trace=trace, draft=draft,
                                  draft_max=draft_max))

    def _prepare(self, draft) -> None:
        # Drafting: the verify cost curve, measured once (cached per model file and machine).
        if draft is not None:
            self._calibrator.prepare(self._core)

    def calibrate(self) -> dict:
        """Measure this model's verify cost for each batch size now (a few seconds on billion-parameter
        models), cache it, and return the planner's figures (see ``planner``)."""
        self._calibrator.run(self._core)
        return self.planner

    @property
    def planner(self) -> dict:
        """What the n-gram draft planner learnt on this model (see fsgen.planner.planner_figures)."""
        from .planner import planner_figures
        return planner_figures(self._core.planner())

    def cancel(self) -> None:
        self._core.cancel()

    def close(self) -> None:
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
    """A small model (System 1) and a large one (System 2) decoding together."""

    def __init__(self, small: Union[PathLike, Model], large: Union[PathLike, Model], *,
                 small_base: Union[PathLike, Model, None] = None, calibrate: Optional[bool] = None, **model_options):
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
            from .calibration import Calibrator
            # calibrate: measure verify costs before the first drafting call (None: $FSGEN_CALIBRATE).
            self._calibrator = Calibrator(calibrate, [str(self.small.path), str(self.large.path)],
                                          _calibration_options(options), drafter=True)
        except BaseException:
            for m in self._owned:
                m.close()
            raise

    def _start(self, prompt, messages, method, stream, kwargs):
        text, pairs = _prompt_args(prompt, messages)
        if not isinstance(method, str):
            raise InvalidArgumentError(f"method must be a str, got {method!r}")
        options = _generate_options(method, **kwargs)
        if method == "speculative" or (method == "large" and kwargs.get("draft") is not None):
            self._calibrator.prepare(self._core)  # the large model's verify costs
        return self._core.start(text, pairs, options, stream)

    def calibrate(self) -> dict:
        """Measure the large model's verify cost for each batch size and a System 1 step now (a few
        seconds on billion-parameter models), cache them, and return the planner's figures."""
        self._calibrator.run(self._core)
        return self.planner

    def generate(self, prompt: Optional[str] = None, *, messages: Optional[list[dict]] = None,
                 method: str = "speculative", trace: bool = False, **kwargs) -> Result:
        """Sampling options as Model.generate; method parameters as keywords (API.md)."""
        return _run(self._start(prompt, messages, method, False, dict(kwargs, trace=trace)))

    def stream(self, prompt: Optional[str] = None, *, messages: Optional[list[dict]] = None,
               method: str = "speculative", trace: bool = False, **kwargs) -> Stream:
        return Stream(self._start(prompt, messages, method, True, dict(kwargs, trace=trace)))

    def cancel(self) -> None:
        self._core.cancel()

    @property
    def planner(self) -> dict:
        """What the speculative draft planner learnt on this pair (see fsgen.planner.planner_figures):
        measured verify costs by batch size, the draft step's cost, the calibration, acceptance
        estimates, and the draft lengths it would choose now."""
        from .planner import planner_figures
        return planner_figures(self._core.planner())

    def close(self) -> None:
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
