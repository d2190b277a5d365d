"""What one server holds: the loaded models (loaded after the port is bound), the line of requests,
the running generations, the defaults from the command line, and how fsgen's errors become HTTP."""
from __future__ import annotations

import asyncio
import inspect
import logging
import os
import threading
from pathlib import Path
from typing import Any, Optional

import fsgen

from . import fields
from .metrics import Metrics
from .protocol import Defaults, GenRequest, RequestError
from .scheduler import Scheduler

log = logging.getLogger("fsgen.server")
RETRY_AFTER_SECONDS = 5  # what a 503 asks clients to wait (queue full, loading, RPC lost)

SINGLE_MODEL_METHOD = "model"  # what /v1/models and timings call generation with one model


def _display_name(arg: Any) -> str:
    if isinstance(arg, (fsgen.Model,)):
        return arg.path.name.removesuffix(".gguf")
    return Path(os.fspath(arg)).name.removesuffix(".gguf")


class ServerState:
    def __init__(self, *, runner=None, model=None, small=None, large=None, small_base=None,
                 model_options: Optional[dict] = None, defaults: Optional[Defaults] = None,
                 api_key: Optional[str] = None, max_queue: int = 32, max_body_bytes: int = 1 << 20,
                 name: Optional[str] = None):
        if runner is None and model is None and (small is None or large is None):
            raise fsgen.InvalidArgumentError("give a loaded Pair/Model, or model=, or small= and large=")
        self.runner = runner
        self._owns_runner = runner is None
        self._load_args = dict(model=model, small=small, large=large, small_base=small_base,
                               options=dict(model_options or {}))
        self.defaults = defaults or Defaults()
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.scheduler = Scheduler(max_queue)
        self.metrics = Metrics(self.scheduler)
        self.active: set = set()  # running Generations
        self.tasks: set = set()  # their bookkeeping tasks
        self.load_error: Optional[str] = None
        self.loading = "loading the models"  # what /health says until the server is ready
        self.calibration: dict = {}  # the verify cost curve measured or loaded before ready
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.shutting_down = False
        self._loading: Optional[threading.Thread] = None
        if name is None:
            if runner is not None:
                name = self._runner_name(runner)
            elif model is not None:
                name = _display_name(model)
            else:
                name = f"{_display_name(small)}+{_display_name(large)}"
        self.model_id = name
        self.pair = runner is None and model is None or isinstance(runner, fsgen.Pair)
        self.request_fields = fields.request_fields(for_model=not self.pair)
        self.methods = fields.methods() if self.pair else [SINGLE_MODEL_METHOD]

    @staticmethod
    def _runner_name(runner) -> str:
        if isinstance(runner, fsgen.Pair):
            return f"{_display_name(runner.small)}+{_display_name(runner.large)}"
        return _display_name(runner)

    @property
    def ready(self) -> bool:
        return self.runner is not None and not self.shutting_down

    # ---- loading, after the port is bound ----

    def start_loading(self, loop: asyncio.AbstractEventLoop, on_ready=None, on_error=None) -> None:
        """Load the models (unless given) and their verify cost curve in a thread; the server is
        ready (/health 200) only after both, so that no request waits for a calibration."""
        self.loop = loop
        if self.runner is not None and not self.runner.calibration_enabled:
            if on_ready:  # loaded by the caller, nothing to measure: ready now
                on_ready(self)
            return
        given, self.runner = self.runner, None

        def load():
            a = self._load_args
            try:
                if given is not None:
                    runner = given
                elif a["model"] is not None:
                    runner = fsgen.Model(a["model"], **a["options"])
                else:
                    runner = fsgen.Pair(a["small"], a["large"], small_base=a["small_base"], **a["options"])
            except BaseException as exc:  # reported through /health and the command line
                self.load_error = f"{type(exc).__name__}: {exc}"
                if on_error:
                    on_error(self)
                else:
                    log.error("fsgen serve: could not load the models: %s", self.load_error)
                return
            if runner.calibration_enabled and not self.shutting_down:
                self.loading = "measuring the verify cost curve"
                try:
                    self.calibration = runner.calibrate(cached=True)["calibration"]
                except fsgen.FsgenError as exc:  # requests still work: they calibrate or learn as they go
                    log.warning("fsgen serve: could not calibrate: %s", exc)
            # Never measure inside a request: where costs drift, the measured table follows the
            # timings each generation observes instead.
            runner._calibrator.remeasure_on_drift = False
            if self.shutting_down:  # stopped while loading
                self._discard(runner)
                return
            try:
                loop.call_soon_threadsafe(self._loaded, runner, on_ready)
            except RuntimeError:  # the loop is gone: the server stopped while loading
                self._discard(runner)

        self._loading = threading.Thread(target=load, name="fsgen-serve-load", daemon=True)
        self._loading.start()

    def _discard(self, runner) -> None:
        if self._owns_runner:  # a runner given to create_app is its caller's to close
            runner.close()

    def _loaded(self, runner, on_ready) -> None:
        if self.shutting_down:
            self._discard(runner)
            return
        self.runner = runner
        if on_ready:
            on_ready(self)

    # ---- requests ----

    def recover(self, method: str):
        """Run on a request's generation thread before it starts (one generation at a time):
        models on RPC servers that were lost are loaded again for a request that needs them, so
        a restarted `fsgen rpc-server` is picked up without restarting fsgen serve. A pair reloads
        System 2 (not for method "small", which needs only System 1); one model this server loaded
        is loaded afresh. Returns the runner to use; raises ModelLoadError while the server is
        still down (the request gets a 503)."""
        runner = self.runner
        if isinstance(runner, fsgen.Pair):
            if method != "small" and runner.large_lost:
                runner.reload_large()
                log.warning("fsgen serve: System 2 on RPC servers reloaded after a loss")
        elif self._owns_runner and (runner.rpc_stats() or {}).get("lost"):
            fresh = fsgen.Model(self._load_args["model"], **self._load_args["options"])
            self.runner = fresh  # the next requests take it (they start after this one)
            runner.close()
            runner = fresh
            log.warning("fsgen serve: the model on RPC servers reloaded after a loss")
        return runner

    def vocab(self) -> Optional[dict]:
        """How the pair's vocabularies relate (Pair.vocab: kind "shared" or "translated", overlap,
        shared_tokens); None for one model, or while the models load."""
        runner = self.runner
        return dict(runner.vocab) if isinstance(runner, fsgen.Pair) else None

    def default_method(self) -> str:
        if not self.pair:
            return SINGLE_MODEL_METHOD
        return self.defaults.method or "speculative"

    def build_call(self, req: GenRequest) -> tuple[dict, str]:
        """The keywords for runner.stream and the method's name; refuses what the runner does not take."""
        method = req.method or self.default_method()
        call = dict(req.kwargs)
        # The command line's method options go with requests whose method takes them.
        table_method = method if self.pair else "small"
        router = call.get("router") or self.defaults.method_options.get("router")
        system2 = call.get("system2") or self.defaults.method_options.get("system2")
        for name, value in self.defaults.method_options.items():
            if name not in call and fields.applies(name, table_method, router, system2):
                call[name] = value
        if req.messages is not None:
            call["messages"] = req.messages
        else:
            call["prompt"] = req.prompt
        if self.pair:
            call["method"] = method
        elif method != SINGLE_MODEL_METHOD:
            raise RequestError(f"method {method!r} needs a pair: this server runs one model "
                               f"(method {SINGLE_MODEL_METHOD!r})", param="method")
        else:
            accepted = _keywords(self.runner.stream)
            if accepted is not None:
                refused = sorted(set(call) - accepted)
                if refused:
                    raise RequestError(f"{', '.join(refused)}: not a parameter of generation with one model "
                                       f"(needs a pair)", param=refused[0])
        return call, method

    def precheck(self, call: dict) -> None:
        """Validate before waiting in line, with the checks generation makes when it starts (the
        prompt, and the core's table: names, types, ranges, which parameters apply)."""
        self.runner.validate(**call)

    def begin_shutdown(self) -> None:
        """Stop taking requests, fail the waiting ones, cancel the running generations."""
        self.shutting_down = True
        self.scheduler.close()
        for generation in list(self.active):
            generation.cancel()

    def close(self, timeout: float = 30.0) -> None:
        self.begin_shutdown()
        if self._loading is not None:  # never leave llama.cpp loading while the process exits
            self._loading.join(timeout)
        for generation in list(self.active):
            generation.join(timeout)
        if self._owns_runner and self.runner is not None:
            self.runner.close()
            self.runner = None


def _keywords(function) -> Optional[set]:
    """The keyword names a callable takes, or None when it takes any (**kwargs)."""
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


def map_error(exc: BaseException, rpc_lost: bool = False) -> RequestError:
    """fsgen's typed errors as HTTP: bad input is a 400 with the core's message; a model on RPC
    servers that is lost (rpc_lost) a 503 to retry later; the rest a 500 that says what failed
    without a traceback."""
    if isinstance(exc, RequestError):
        return exc
    if rpc_lost and isinstance(exc, (fsgen.GenerationError, fsgen.ModelLoadError)):
        return RequestError(f"the model on RPC servers is unavailable: {exc}", status=503, type="server_error",
                            code="rpc_unavailable", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, fsgen.ContextOverflowError):
        return RequestError(str(exc), code="context_length_exceeded")
    if isinstance(exc, fsgen.TemplateError):
        return RequestError(str(exc), code="template_error")
    if isinstance(exc, fsgen.IncompatibleVocabError):  # a method this pair's tokenizers do not allow
        return RequestError(str(exc), code="incompatible_vocab", param="method")
    if isinstance(exc, fsgen.InvalidArgumentError):
        return RequestError(str(exc), code="invalid_value")
    if isinstance(exc, fsgen.FsgenError):
        return RequestError(f"{type(exc).__name__}: {exc}", status=500, type="server_error", code="generation_error")
    log.error("fsgen serve: unexpected error", exc_info=exc)
    return RequestError(f"internal error ({type(exc).__name__})", status=500, type="server_error",
                        code="internal_error")
