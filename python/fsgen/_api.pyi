# Generated from the core's parameter table (src/params.cpp) by `python -m fsgen._stubs --write`.
# Do not edit by hand: tests/python/api/test_options_contract.py checks that it matches the table.
import os
import pathlib
from typing import Any, Literal, Mapping, Optional, Sequence, Union

from ._results import Chunk as Chunk
from ._results import Drafts as Drafts
from ._results import Result as Result
from ._results import Source as Source
from ._results import Stats as Stats
from ._results import Stream as Stream
from ._results import Trace as Trace

PathLike = Union[str, os.PathLike[str]]
MethodName = Literal['small', 'large', 'speculative', 'contrastive', 'proxy', 'fs', 'oracle']
RouterName = Literal['entropy', 'top1', 'margin', 'budget', 'always', 'never']
System2Name = Literal['large', 'contrastive', 'proxy']

class Model:
    path: pathlib.Path
    def __init__(self, path: PathLike, *, n_ctx: int = 4096, n_threads: Optional[int] = None,
                 n_gpu_layers: Optional[int] = None, n_batch: int = 512, verbose: bool = False,
                 flash_attn: Optional[bool] = None, rpc: Optional[Sequence[str]] = None,
                 rpc_timeout: float = 60.0, calibrate: Union[bool, None, PathLike, Mapping[str, Any]] = None,
                 prompt_cache_mib: int = 256) -> None: ...
    @property
    def info(self) -> dict[str, Any]: ...
    @property
    def planner(self) -> dict[str, Any]: ...
    def calibrate(self, *, cached: bool = False) -> dict[str, Any]: ...
    @property
    def calibration_enabled(self) -> bool: ...
    @property
    def cost_table(self) -> dict[str, Any]: ...
    @property
    def closed(self) -> bool: ...
    def tokenize(self, text: str, *, special: bool = True) -> list[int]: ...
    def detokenize(self, ids: Sequence[int]) -> str: ...
    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], *, add_assistant: bool = True) -> str: ...
    def generate(
        self,
        prompt: Optional[str] = None,
        *,
        messages: Optional[Sequence[Mapping[str, Any]]] = None,
        max_tokens: int = 256,
        stop: Optional[Union[str, Sequence[str]]] = None,
        trace: bool = False,
        temperature: float = 0.0,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        seed: int = 0,
        draft: Optional[Literal['model', 'ngram', 'auto']] = None,
        draft_max: Optional[int] = None,
    ) -> Result: ...
    def stream(
        self,
        prompt: Optional[str] = None,
        *,
        messages: Optional[Sequence[Mapping[str, Any]]] = None,
        max_tokens: int = 256,
        stop: Optional[Union[str, Sequence[str]]] = None,
        trace: bool = False,
        temperature: float = 0.0,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        seed: int = 0,
        draft: Optional[Literal['model', 'ngram', 'auto']] = None,
        draft_max: Optional[int] = None,
    ) -> Stream: ...
    def validate(self, prompt: Optional[str] = None, *, messages: Optional[Sequence[Mapping[str, Any]]] = None,
                 **options: Any) -> None: ...
    def cancel(self) -> None: ...
    def rpc_stats(self) -> Optional[dict[str, Any]]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Model: ...
    def __exit__(self, *exc: object) -> None: ...

class Pair:
    small: Model
    large: Model
    small_base: Optional[Model]
    def __init__(self, small: Union[PathLike, Model], large: Union[PathLike, Model], *,
                 small_base: Union[PathLike, Model, None] = None, large_rpc: Optional[Sequence[str]] = None,
                 rpc_timeout: float = 60.0, calibrate: Union[bool, None, PathLike, Mapping[str, Any]] = None, **model_options: Any) -> None: ...
    @property
    def planner(self) -> dict[str, Any]: ...
    def calibrate(self, *, cached: bool = False) -> dict[str, Any]: ...
    @property
    def calibration_enabled(self) -> bool: ...
    @property
    def cost_table(self) -> dict[str, Any]: ...
    @property
    def vocab(self) -> dict[str, Any]: ...
    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], *,
                            add_assistant: bool = True) -> dict[str, str]: ...
    def generate(
        self,
        prompt: Optional[str] = None,
        *,
        messages: Optional[Sequence[Mapping[str, Any]]] = None,
        method: Literal['small', 'large', 'speculative', 'contrastive', 'proxy', 'fs', 'oracle'] = 'speculative',
        max_tokens: int = 256,
        stop: Optional[Union[str, Sequence[str]]] = None,
        trace: bool = False,
        temperature: float = 0.0,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        seed: int = 0,
        draft: Optional[Literal['model', 'ngram', 'auto']] = None,
        draft_max: Optional[int] = None,
        cross_vocab: Literal['auto', 'slem', 'tli'] = 'auto',
        draft_p_min: float = 0.0,
        router: Literal['entropy', 'top1', 'margin', 'budget', 'always', 'never'] = 'entropy',
        threshold: Optional[float] = None,
        system2_share: Optional[float] = None,
        guard: Optional[bool] = None,
        system2: Literal['large', 'contrastive', 'proxy'] = 'large',
        alpha: Optional[float] = None,
        beta: float = 0.5,
        variant: Literal['standard', 'fsgen'] = 'standard',
    ) -> Result: ...
    def stream(
        self,
        prompt: Optional[str] = None,
        *,
        messages: Optional[Sequence[Mapping[str, Any]]] = None,
        method: Literal['small', 'large', 'speculative', 'contrastive', 'proxy', 'fs', 'oracle'] = 'speculative',
        max_tokens: int = 256,
        stop: Optional[Union[str, Sequence[str]]] = None,
        trace: bool = False,
        temperature: float = 0.0,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        seed: int = 0,
        draft: Optional[Literal['model', 'ngram', 'auto']] = None,
        draft_max: Optional[int] = None,
        cross_vocab: Literal['auto', 'slem', 'tli'] = 'auto',
        draft_p_min: float = 0.0,
        router: Literal['entropy', 'top1', 'margin', 'budget', 'always', 'never'] = 'entropy',
        threshold: Optional[float] = None,
        system2_share: Optional[float] = None,
        guard: Optional[bool] = None,
        system2: Literal['large', 'contrastive', 'proxy'] = 'large',
        alpha: Optional[float] = None,
        beta: float = 0.5,
        variant: Literal['standard', 'fsgen'] = 'standard',
    ) -> Stream: ...
    def validate(self, prompt: Optional[str] = None, *, messages: Optional[Sequence[Mapping[str, Any]]] = None,
                 **options: Any) -> None: ...
    def cancel(self) -> None: ...
    @property
    def large_lost(self) -> bool: ...
    def reload_large(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Pair: ...
    def __exit__(self, *exc: object) -> None: ...
