"""Small shared helpers for the fsgen tests: common settings, invariant checks, the llama-cpp-python
reference engine (the same libllama fsgen runs on), a chi-square test without scipy."""
from __future__ import annotations

import importlib
import math
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pytest

import fsgen

REPO = Path(__file__).resolve().parents[2]

# The machine running the tests may have 2 cores shared with other work: one thread per context
# for the tiny models, small contexts.
THREADS = 1
N_CTX = 256
TINY = dict(n_ctx=N_CTX, n_threads=THREADS)

# Names from the core's table (fsgen.param_table / fsgen.methods), never listed here.
_PARAMS = {p["name"]: p for p in fsgen.param_table()}
METHODS = tuple(fsgen.methods())
ROUTERS = tuple(_PARAMS["router"]["choices"])
SYSTEM2 = tuple(_PARAMS["system2"]["choices"])

# The core's statistics (test_contract checks that docs/API.md lists exactly these).
STATS_KEYS = {name for name, _ in fsgen._core.stat_fields()}

TRACE_DTYPES = {
    "token": np.int32, "source": np.int8, "entropy": np.float32, "top1": np.float32,
    "margin": np.float32, "system2_called": np.bool_, "mismatch": np.bool_, "text_offset": np.int32,
    "draft_source": np.int8,
}

# Prompts for the tiny bed (byte-level BPE: any text works). Varied lengths, merges, a newline,
# multi-byte characters and a ChatML prompt with special tokens.
PROMPTS = [
    "hello world",
    "the",
    "Once upon a time, in a land far away",
    "x",
    "and of to the hello\n",
    "<|im_start|>user\nWrite a poem<|im_end|>\n<|im_start|>assistant\n",
    "caf\u00e9 \u0436 \u20ac \U0001F600 ok",
    "1234 + 5678 =",
]

CHATML = "<|im_start|>{role}\n{content}<|im_end|>\n"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def skip_or_fail(message: str):
    """Skip where an optional dependency is missing, fail under CI (CI installs it). Works in a
    test, a fixture, or at module level."""
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require(module: str, install: str):
    """Import an optional dependency, or skip (fail under CI) saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        skip_or_fail(f"{module} is not installed ({exc}): {install}")



# ---- invariants of a Result ----

def check_stats(result) -> None:
    stats = result.stats
    assert set(stats) == STATS_KEYS, f"stats keys differ from API.md: {sorted(set(stats) ^ STATS_KEYS)}"
    for key, value in stats.items():
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (key, value)
        assert value >= 0, (key, value)
    assert stats["n_tokens"] == len(result.tokens)
    assert stats["seconds"] == pytest.approx(stats["prompt_seconds"] + stats["generation_seconds"], rel=1e-6, abs=1e-9)
    if stats["generation_seconds"] > 0:
        assert stats["tokens_per_second"] == pytest.approx(stats["n_tokens"] / stats["generation_seconds"], rel=1e-6)
    assert 0.0 <= stats["system2_fraction"] <= 1.0
    assert 0.0 <= stats["mismatch_fraction"] <= 1.0
    assert 0.0 <= stats["acceptance_rate"] <= 1.0
    assert stats["accepted"] <= stats["drafted"]
    assert stats["mismatches"] <= stats["n_tokens"]
    assert stats["guard_tokens"] <= stats["n_tokens"]
    n = stats["n_tokens"]
    assert stats["mismatch_fraction"] == pytest.approx(stats["mismatches"] / n if n else 0.0)
    assert stats["acceptance_rate"] == pytest.approx(stats["accepted"] / stats["drafted"] if stats["drafted"] else 0.0)


def check_trace(result, model: Optional["fsgen.Model"] = None) -> None:
    """The trace's arrays, dtypes and counts agree with the Result and its stats."""
    trace = result.trace
    assert trace is not None
    n = len(result.tokens)
    for name, dtype in TRACE_DTYPES.items():
        array = getattr(trace, name)
        assert isinstance(array, np.ndarray), name
        assert array.dtype == dtype, (name, array.dtype)
        assert array.shape == (n,), (name, array.shape, n)
    assert len(trace) == n
    assert trace.token.tolist() == result.tokens
    assert set(np.unique(trace.source).tolist()) <= {0, 1, 2}

    stats = result.stats
    system2 = trace.source != 0
    assert stats["system2_fraction"] == pytest.approx(system2.mean() if n else 0.0)
    assert int((trace.source == 0).sum()) + int(system2.sum()) == n
    assert stats["mismatches"] == int(trace.mismatch.sum())
    # A mismatch is measured only where System 2 was consulted.
    assert not (trace.mismatch & ~trace.system2_called).any()

    drafts = trace.drafts
    assert drafts.length.dtype == np.int32 and drafts.accepted.dtype == np.int32
    assert len(drafts.length) == len(drafts.accepted) == len(drafts)
    assert stats["drafted"] == int(drafts.length.sum())
    assert stats["accepted"] == int(drafts.accepted.sum())
    assert (drafts.length >= 1).all() and (drafts.accepted >= 0).all() and (drafts.accepted <= drafts.length).all()
    assert set(np.unique(drafts.source).tolist()) <= {1, 2}
    ngram_rounds = drafts.source == 2
    assert stats["drafted_ngram"] == int(drafts.length[ngram_rounds].sum())
    assert stats["accepted_ngram"] == int(drafts.accepted[ngram_rounds].sum())
    # Each emitted draft token says who drafted it; an accepted end-of-generation draft is not
    # emitted, nor is one past a stop string.
    assert set(np.unique(trace.draft_source).tolist()) <= {0, 1, 2}
    for origin in (1, 2):
        emitted = int((trace.draft_source == origin).sum())
        accepted = int(drafts.accepted[drafts.source == origin].sum())
        assert accepted - 1 <= emitted <= accepted, (origin, emitted, accepted)
    assert not (trace.draft_source == 1)[trace.source != 0].any(), "System 1's accepted drafts are its tokens"
    rounds = len(drafts)
    assert stats["mean_accepted_length"] == pytest.approx(stats["accepted"] / rounds if rounds else 0.0)

    # text_offset: monotone character offsets into Result.text.
    offsets = trace.text_offset
    if n:
        assert offsets[0] == 0
        assert (np.diff(offsets) >= 0).all(), offsets
        if result.finish_reason != "stop":  # a stop string cuts the text after the tokens wrote it
            assert offsets[-1] <= len(result.text)
    if model is not None:
        # Where the tokens before row i end on a character boundary, the offset is exactly the
        # length of their text.
        for i in range(n):
            before = model.detokenize(result.tokens[:i])
            if before.endswith("\ufffd"):
                continue
            if result.finish_reason == "stop" and len(before) > len(result.text):
                break
            assert offsets[i] == len(before), (i, offsets[i], before)
            assert result.text.startswith(before), (i, before)


def check_result(result, model=None) -> None:
    assert isinstance(result, fsgen.Result)
    assert isinstance(result.text, str)
    assert all(isinstance(t, int) for t in result.tokens)
    assert result.finish_reason in ("eog", "stop", "length", "cancelled")
    check_stats(result)
    if result.trace is not None:
        check_trace(result, model)


def collect(stream) -> tuple[str, list]:
    chunks = list(stream)
    assert all(isinstance(c, fsgen.Chunk) for c in chunks)
    return "".join(c.text for c in chunks), chunks


# ---- the reference engine: llama-cpp-python on fsgen's own libllama ----

def fsgen_llama_lib_dir() -> Path:
    """The directory holding the libllama that fsgen._core runs on.

    First the library actually mapped into this process (Linux), else an installed wheel's
    `fsgen/lib`, else this source tree's dev build.
    """
    maps = Path("/proc/self/maps")
    if maps.exists():
        for line in maps.read_text().splitlines():
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if Path(path).name.startswith("libllama.so"):
                return Path(path).parent
    package = Path(fsgen.__file__).resolve().parent
    for candidate in (package / "lib", Path(fsgen._core.__file__).resolve().parent / "bin",
                      REPO / "build" / "dev" / "bin"):
        if any(candidate.glob("libllama.*")):
            return candidate
    raise FileNotFoundError("cannot find the libllama that fsgen uses")


def import_llama_cpp():
    """llama_cpp loaded on fsgen's libllama (the same engine), or skip (fail under CI)."""
    lib_dir = fsgen_llama_lib_dir()
    if "llama_cpp" not in sys.modules:
        os.environ["LLAMA_CPP_LIB_PATH"] = str(lib_dir)
    try:
        import llama_cpp
    except Exception as exc:  # ImportError, or OSError from loading the library
        skip_or_fail(f"llama-cpp-python is not usable ({exc}); install it with "
                     "CMAKE_ARGS=-DLLAMA_BUILD=OFF pip install llama-cpp-python==0.3.36")
    loaded = Path(llama_cpp.llama_cpp._lib._name).resolve()
    ours = sorted(p.resolve() for p in lib_dir.glob("libllama.so*"))
    if loaded not in ours:
        pytest.fail(f"llama_cpp runs {loaded}, not fsgen's libllama in {lib_dir}: not the same engine")
    return llama_cpp


class Reference:
    """One llama.cpp context through llama-cpp-python, fed the way fsgen feeds its contexts: the
    prompt in one batch, then one token per decode, logits of the last row only."""

    def __init__(self, path, *, n_ctx: int = N_CTX, n_threads: int = THREADS, n_batch: int = 512):
        self.llama_cpp = llama_cpp = import_llama_cpp()
        n_batch = min(n_batch, n_ctx)  # what Llama() does; fsgen must be given the same n_batch
        self.n_batch = n_batch
        # fsgen keeps llama.cpp's context defaults (flash attention "auto", which is on for the
        # CPU backend) except n_ubatch = n_batch; Llama() turns flash attention off unless asked.
        self.llm = llama_cpp.Llama(str(path), n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch, n_threads=n_threads,
                                   n_threads_batch=n_threads, flash_attn=True, logits_all=False, verbose=False)
        self.n_vocab = self.llm.n_vocab()
        self.vocab = self.llm._model.vocab

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=True, special=True)

    def start(self, tokens: Sequence[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(list(tokens))
        return self.logits()

    def feed(self, token: int) -> np.ndarray:
        self.llm.eval([int(token)])
        return self.logits()

    def logits(self) -> np.ndarray:
        pointer = self.llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

    def is_eog(self, token: int) -> bool:
        return bool(self.llama_cpp.llama_vocab_is_eog(self.vocab, int(token)))

    def greedy(self, tokens: Sequence[int], max_tokens: int) -> list[int]:
        logits = self.start(tokens)
        out = []
        for _ in range(max_tokens):
            token = int(np.argmax(logits))
            if self.is_eog(token):
                break
            out.append(token)
            if len(out) < max_tokens:
                logits = self.feed(token)
        return out

    def close(self) -> None:
        self.llm.close()


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    m = x.max()
    return x - (m + np.log(np.exp(x - m).sum()))


def uncertainty(logits: np.ndarray) -> tuple[float, float, float]:
    """(entropy in nats, top-1 probability, p1 - p2) of softmax(logits)."""
    logp = log_softmax(logits)
    p = np.exp(logp)
    top = np.sort(p)[::-1]
    return float(-(p * logp).sum()), float(top[0]), float(top[0] - top[1])


# ---- chi-square without scipy ----

def _gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) (Numerical Recipes: series / continued fraction)."""
    if x <= 0:
        return 1.0
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(10000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(log_prefix) * h


def chi2_sf(x: float, df: int) -> float:
    return _gamma_q(df / 2.0, x / 2.0)


def chi2_two_sample(a: dict, b: dict, min_expected: float = 5.0) -> tuple[float, int, float]:
    """Chi-square test that two samples of categories (value -> count) come from one distribution.

    Categories whose expected count in either sample is below min_expected are pooled into one.
    Returns (statistic, degrees of freedom, p-value).
    """
    keys = sorted(set(a) | set(b))
    na, nb = sum(a.values()), sum(b.values())
    rows = []
    pooled = [0, 0]
    for k in keys:
        ca, cb = a.get(k, 0), b.get(k, 0)
        total = ca + cb
        if min(total * na, total * nb) / (na + nb) < min_expected:
            pooled[0] += ca
            pooled[1] += cb
        else:
            rows.append((ca, cb))
    if sum(pooled):
        rows.append(tuple(pooled))
    stat = 0.0
    for ca, cb in rows:
        total = ca + cb
        for count, n in ((ca, na), (cb, nb)):
            expected = total * n / (na + nb)
            if expected > 0:
                stat += (count - expected) ** 2 / expected
    df = max(len(rows) - 1, 1)
    return stat, df, chi2_sf(stat, df)


def chi2_goodness(counts: dict, probabilities: dict, min_expected: float = 5.0) -> tuple[float, int, float]:
    """Chi-square goodness of fit of observed counts to exact probabilities (pooled like above)."""
    n = sum(counts.values())
    extra = set(counts) - set(probabilities)
    assert not extra, f"observed categories of probability 0: {sorted(extra)}"
    cells = []
    pooled = [0, 0.0]
    for k, p in probabilities.items():
        observed, expected = counts.get(k, 0), n * p
        if expected < min_expected:
            pooled[0] += observed
            pooled[1] += expected
        else:
            cells.append((observed, expected))
    if pooled[1] > 0:
        cells.append(tuple(pooled))
    stat = sum((o - e) ** 2 / e for o, e in cells)
    df = max(len(cells) - 1, 1)
    return stat, df, chi2_sf(stat, df)
