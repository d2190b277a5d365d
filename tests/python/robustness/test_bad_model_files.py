"""fsgen never crashes its host process on bad model files.

llama.cpp aborts the process (GGML_ASSERT) on some bad files instead of refusing them, so every
load of a damaged file here runs in a child process (tests/support/gguf_faults.py): a crash fails the
test naming the file, instead of killing pytest. Each case must end in the right fsgen exception,
with a message naming the cause, or (for harmless damage) load and generate.

The files are made here from the tiny bed: truncated at many offsets, with header fields and
metadata corrupted byte by byte or rewritten with the gguf package, structurally wrong models,
every architecture name llama.cpp knows, and seeded random byte damage.
"""
from __future__ import annotations

import random
import re
import struct
from pathlib import Path

import pytest

import gguf
import fsgen
import tinymodels
from gguf_faults import layout, load_all_in_children, patched, rewritten, truncated, u32, u64
from helpers import REPO, skip_or_fail

T = gguf.GGUFValueType
TINY_KW = dict(n_layer=2, n_embd=64, n_head=4, n_head_kv=4, n_ff=128, seed=0)


def check_outcomes(cases: list, outcomes: dict, *, allow_load: bool = False) -> None:
    """Every case ended as expected: case["error"] (class name) with case["match"] (regex) in the
    message, or, with allow_load, loaded or any FsgenError. Reports every failure at once."""
    failures = []
    for case in cases:
        outcome = outcomes.get(case["id"])
        if outcome is None:
            failures.append(f"{case['id']}: no outcome")
        elif "crash" in outcome:
            failures.append(f"{case['id']}: CRASHED the process: {outcome['crash'][-800:]}")
        elif allow_load and (outcome.get("loaded") or outcome.get("fsgen_error")):
            continue
        elif outcome.get("loaded"):
            failures.append(f"{case['id']}: loaded, expected {case['error']}")
        elif outcome["error"] != case.get("error") and not (case.get("error") is None and outcome["fsgen_error"]):
            failures.append(f"{case['id']}: raised {outcome['error']}: {outcome['message']!r}, expected {case.get('error')}")
        elif case.get("match") and not re.search(case["match"], outcome["message"]):
            failures.append(f"{case['id']}: the message {outcome['message']!r} does not match {case['match']!r}")
    assert not failures, f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures)


@pytest.fixture(scope="module")
def valid(tiny_small) -> Path:
    return tiny_small


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("badfiles")


# ---- truncation ----

def truncation_offsets(path) -> list[int]:
    """Offsets inside every part of the file: header fields, each metadata key/type/value, each
    tensor info field, the padding, each tensor's data, and the last byte."""
    lay = layout(path)
    offsets = {1, 3, 4, 6, 8, 12, 16, 20, 24}
    for kv in lay.kvs:
        offsets |= {kv.key_offset + 4, kv.key_offset + 9, kv.type_offset, kv.type_offset + 2, kv.value_offset,
                    kv.value_offset + 3, (kv.value_offset + kv.end) // 2, kv.end - 1}
    for t in lay.tensors:
        offsets |= {t.name_offset, t.name_offset + 10, t.n_dims_offset, t.dims_offsets[0] + 4, t.type_offset,
                    t.offset_offset, t.offset_offset + 7}
    offsets |= {lay.infos_end, lay.data_offset - 1, lay.data_offset, lay.size - 1}
    for t in lay.tensors:
        offsets.add(lay.data_offset + t.offset + 5)
    return sorted(o for o in offsets if 0 < o < lay.size)


def test_truncated_at_many_offsets(valid, work):
    offsets = truncation_offsets(valid)
    assert len(offsets) > 200
    cases = []
    for offset in offsets:
        path = truncated(valid, work / f"trunc-{offset}.gguf", offset)
        cases.append(dict(id=f"truncated at {offset}", path=str(path), error="ModelLoadError",
                          match="truncated|not a GGUF file"))
    check_outcomes(cases, load_all_in_children(cases))


def test_truncated_tensor_data_names_the_tensor(valid, work):
    lay = layout(valid)
    last = lay.tensors[-1]
    path = truncated(valid, work / "trunc-data.gguf", lay.data_offset + last.offset + 16)
    cases = [dict(id="data", path=str(path), error="ModelLoadError", match=rf"tensor {re.escape(last.name)} ends at byte")]
    check_outcomes(cases, load_all_in_children(cases))


# ---- corrupted header fields and metadata, byte by byte ----

def header_corruptions(path) -> list[tuple[str, dict, str]]:
    """(name, {offset: bytes}, regex the message must match)."""
    lay = layout(path)
    first = lay.kvs[0]
    name = lay.kv("general.name")
    tokens = lay.kv("tokenizer.ggml.tokens")
    out = [
        ("version 0", {4: u32(0)}, "version"),
        ("version 1", {4: u32(1)}, "GGUFv1"),
        ("version 999", {4: u32(999)}, "version 999"),
        ("tensor count 2^62", {8: u64(1 << 62)}, "damaged"),
        ("tensor count 2^40", {8: u64(1 << 40)}, "damaged"),
        ("tensor count +1", {8: u64(lay.n_tensors + 1)}, "damaged"),
        ("kv count 2^62", {16: u64(1 << 62)}, "damaged"),
        ("kv count -1", {16: u64(-1)}, "damaged"),
        ("kv count +1", {16: u64(lay.n_kv + 1)}, "damaged"),
        ("key length 2^62", {first.key_offset: u64(1 << 62)}, "string length"),
        ("key length 0", {first.key_offset: u64(0)}, "empty"),
        ("value type 99", {first.type_offset: u32(99)}, "invalid GGUF type 99"),
        ("string length 2^62", {name.value_offset: u64(1 << 62)}, "string length"),
        ("string length past the end", {name.value_offset: u64(lay.size)}, "string length"),
        ("array count 2^62", {tokens.count_offset: u64(1 << 62)}, "damaged"),
        ("array count 2^30", {tokens.count_offset: u64(1 << 30)}, "damaged"),
        ("array element type 77", {tokens.value_offset: u32(77)}, "invalid GGUF type 77"),
        ("array of arrays", {tokens.value_offset: u32(9)}, "invalid GGUF type 9"),
    ]
    for t in (lay.tensors[0], lay.tensors[len(lay.tensors) // 2], lay.tensors[-1]):
        n = t.name
        out += [
            (f"{n}: type 200", {t.type_offset: u32(200)}, "invalid ggml type 200"),
            (f"{n}: removed type 4", {t.type_offset: u32(4)}, "DEPRECATED"),
            (f"{n}: offset past the end", {t.offset_offset: u64(lay.size)}, "offset"),
            (f"{n}: offset 2^63", {t.offset_offset: u64(1 << 63)}, "offset"),
            (f"{n}: offset misaligned", {t.offset_offset: u64(t.offset + 4)}, "offset"),
            (f"{n}: dimension 2^62", {t.dims_offsets[0]: u64(1 << 62)}, "overflow|size in bytes"),
            (f"{n}: dimensions 2^40 x 2^40", {t.dims_offsets[0]: u64(1 << 40), t.dims_offsets[-1]: u64(1 << 40)},
             "overflow|offset"),
            (f"{n}: dimension -5", {t.dims_offsets[0]: u64(-5)}, "invalid number of elements"),
            (f"{n}: 99 dimensions", {t.n_dims_offset: u32(99)}, "number of dimensions"),
            (f"{n}: 0 dimensions", {t.n_dims_offset: u32(0)}, "damaged"),
            (f"{n}: name length 2^62", {t.name_offset: u64(1 << 62)}, "string length"),
            (f"{n}: name length 100", {t.name_offset: u64(100)}, "too long"),
        ]
    # Zero dimensions of the last tensor keep the layout valid: llama.cpp names the bad shape.
    last = lay.tensors[-1]
    out += [
        (f"{last.name}: dimension 0", {last.dims_offsets[0]: u64(0)}, f"{re.escape(last.name)}.*wrong shape"),
        (f"{last.name}: rows 0", {last.dims_offsets[-1]: u64(0)}, f"{re.escape(last.name)}.*wrong shape"),
    ]
    return out


def test_corrupted_header_and_metadata_bytes(valid, work):
    cases = []
    for i, (name, patches, match) in enumerate(header_corruptions(valid)):
        path = patched(valid, work / f"corrupt-{i}.gguf", patches)
        cases.append(dict(id=name, path=str(path), error="ModelLoadError", match=match))
    check_outcomes(cases, load_all_in_children(cases))


# ---- metadata that parses but is wrong (rewritten with the gguf package) ----

# (name, rewritten() keyword arguments, regex). Most of these made llama.cpp abort the process
# before fsgen checked them (src/gguf_check.cpp).
METADATA_FAULTS = [
    ("block_count a string", dict(set_kv={"llama.block_count": ("2", T.STRING)}), "block_count.*wrong type"),
    ("block_count missing", dict(drop_kv=["llama.block_count"]), "llama.block_count"),
    ("block_count 0", dict(set_kv={"llama.block_count": (0, T.UINT32)}), "block_count is 0"),
    ("block_count 2^32-1", dict(set_kv={"llama.block_count": (2**32 - 1, T.UINT32)}), "block_count"),
    ("nextn layers > block_count", dict(set_kv={"llama.nextn_predict_layers": (3, T.UINT32)}), "nextn_predict_layers"),
    ("experts without used count", dict(set_kv={"llama.expert_count": (4, T.UINT32)}), "mixture-of-experts"),
    ("too many experts", dict(set_kv={"llama.expert_count": (5000, T.UINT32),
                                      "llama.expert_used_count": (2, T.UINT32)}), "mixture-of-experts"),
    ("used experts without experts", dict(set_kv={"llama.expert_used_count": (2, T.UINT32)}), "mixture-of-experts"),
    ("8 of 4 experts used", dict(set_kv={"llama.expert_count": (4, T.UINT32),
                                         "llama.expert_used_count": (8, T.UINT32)}), "mixture-of-experts"),
    ("expert groups", dict(set_kv={"llama.expert_count": (4, T.UINT32), "llama.expert_used_count": (2, T.UINT32),
                                   "llama.expert_group_count": (4, T.UINT32)}), "mixture-of-experts"),
    ("expert groups without experts", dict(set_kv={"llama.expert_group_count": (2, T.UINT32)}), "mixture-of-experts"),
    ("unknown rope scaling", dict(set_kv={"llama.rope.scaling.type": ("bogus", T.STRING)}), "rope.scaling.type"),
    ("rms epsilon NaN", dict(set_kv={"llama.attention.layer_norm_rms_epsilon": (float("nan"), T.FLOAT32)}),
     "epsilon"),
    ("rms epsilon -1", dict(set_kv={"llama.attention.layer_norm_rms_epsilon": (-1.0, T.FLOAT32)}), "epsilon"),
    ("rms epsilon missing", dict(drop_kv=["llama.attention.layer_norm_rms_epsilon"]), "layer_norm_rms_epsilon"),
    ("kv heads 0 in one layer", dict(set_kv={"llama.attention.head_count_kv": ([4, 0], T.ARRAY, T.UINT32)}),
     "head_count_kv.*layer 1"),
    ("kv heads 3 in one layer", dict(set_kv={"llama.attention.head_count_kv": ([4, 3], T.ARRAY, T.UINT32)}),
     "head_count_kv.*layer 1"),
    ("kv heads 8 of 4", dict(set_kv={"llama.attention.head_count_kv": (8, T.UINT32)}), "head_count_kv"),
    ("head array too short", dict(set_kv={"llama.attention.head_count": ([4], T.ARRAY, T.UINT32)}),
     "head_count.*array length"),
    ("rope dimensions 1000", dict(set_kv={"llama.rope.dimension_count": (1000, T.UINT32)}), "rope.dimension_count"),
    ("rope dimensions 0", dict(set_kv={"llama.rope.dimension_count": (0, T.UINT32)}), "n_rot|rotary"),
    ("key length 0", dict(set_kv={"llama.attention.key_length": (0, T.UINT32)}), "head size"),
    ("embedding length 0", dict(set_kv={"llama.embedding_length": (0, T.UINT32)}), "embedding_length is 0"),
    ("embedding length 128", dict(set_kv={"llama.embedding_length": (128, T.UINT32)}), "rotary|n_rot|shape"),
    ("general.name an array", dict(set_kv={"general.name": ([1, 2], T.ARRAY, T.UINT32)}), "general.name"),
    ("alignment 3", dict(set_kv={"general.alignment": (3, T.UINT32)}), "alignment"),
    # The vocabulary.
    ("no tokenizer", dict(set_kv={"tokenizer.ggml.model": ("none", T.STRING)}), "no vocabulary"),
    ("unknown tokenizer", dict(set_kv={"tokenizer.ggml.model": ("bogus", T.STRING)}), "unknown tokenizer: 'bogus'"),
    ("unknown pre-tokenizer", dict(set_kv={"tokenizer.ggml.pre": ("bogus", T.STRING)}), "pre-tokenizer.*bogus"),
    ("no token list", dict(drop_kv=["tokenizer.ggml.tokens"]), "tokenizer vocab"),
    ("token list of numbers", dict(set_kv={"tokenizer.ggml.tokens": (list(range(299)), T.ARRAY, T.UINT32)}),
     "tokenizer.ggml.tokens"),
    ("no merges", dict(drop_kv=["tokenizer.ggml.merges"]), "merges"),
    ("token types short", dict(set_kv={"tokenizer.ggml.token_type": ([1] * 10, T.ARRAY, T.INT32)}), "toktypes"),
    ("SentencePiece without byte tokens", dict(set_kv={"tokenizer.ggml.model": ("llama", T.STRING),
                                                       "tokenizer.ggml.scores": ([0.0] * 299, T.ARRAY, T.FLOAT32)}),
     "cannot tokenize"),
    ("RWKV tokenizer on BPE tokens", dict(set_kv={"tokenizer.ggml.model": ("rwkv", T.STRING)}), "cannot tokenize"),
    ("WordPiece with byte tokens", dict(set_kv={"tokenizer.ggml.model": ("bert", T.STRING),
                                                "tokenizer.ggml.token_type": ([6] * 256 + [1] * 40 + [3] * 3,
                                                                              T.ARRAY, T.INT32)}), "byte token"),
    ("BPE byte tokens without <0x..> text", dict(set_kv={"tokenizer.ggml.token_type": ([6] * 256 + [1] * 40 + [3] * 3,
                                                                                        T.ARRAY, T.INT32)}),
     "vocabulary"),
    # Architectures whose graph asserts something the llama tensors do not give.
    ("qwen2 with rope dimensions 8", dict(arch="qwen2", set_kv={"qwen2.rope.dimension_count": (8, T.UINT32)}),
     "rotary"),
    ("minicpm with per-layer heads", dict(arch="minicpm", set_kv={"minicpm.attention.head_count": ([4, 2], T.ARRAY,
                                                                                                   T.UINT32),
                                                                  "minicpm.attention.head_count_kv": (2, T.UINT32)}),
     "attention heads"),
    ("smallthinker without experts", dict(arch="smallthinker"), "expert_count"),
    ("llada-moe without experts", dict(arch="llada-moe"), "expert_count"),
    ("paddleocr without rope sections", dict(arch="paddleocr"), "dimension_sections"),
    ("unknown architecture", dict(arch="notanarch"), "unknown model architecture: 'notanarch'"),
]


def duplicate_token_fault():
    tokens = tinymodels.build_vocab()[0]
    tokens = tokens[:-4] + [tokens[5]] + tokens[-3:]
    return ("a token listed twice", dict(set_kv={"tokenizer.ggml.tokens": (tokens, T.ARRAY, T.STRING)}),
            "appears twice")


def test_wrong_metadata(valid, work):
    cases = []
    for i, (name, kwargs, match) in enumerate(METADATA_FAULTS + [duplicate_token_fault()]):
        path = rewritten(valid, work / f"meta-{i}.gguf", **kwargs)
        cases.append(dict(id=name, path=str(path), generate="hello\nworld", error="ModelLoadError", match=match))
    check_outcomes(cases, load_all_in_children(cases))


def test_harmless_metadata_changes_still_load(valid, work):
    """The checks refuse only what is wrong: valid variations load and generate."""
    variants = [
        dict(set_kv={"llama.attention.head_count": ([4, 4], T.ARRAY, T.UINT32)}),
        dict(set_kv={"llama.attention.head_count_kv": ([2, 2], T.ARRAY, T.UINT32)},
             tensor_arrays=None),  # GQA declared per layer, tensors unchanged: shape error, not a crash
        dict(set_kv={"llama.rope.scaling.type": ("yarn", T.STRING), "llama.rope.scaling.factor": (4.0, T.FLOAT32)}),
        dict(set_kv={"llama.context_length": (0, T.UINT32)}),
        dict(set_kv={"llama.expert_count": (0, T.UINT32), "llama.expert_used_count": (0, T.UINT32)}),
        dict(drop_kv=["tokenizer.ggml.pre"]),
        dict(arch="qwen2"),
        dict(arch="mistral3"),
    ]
    cases = []
    for i, kwargs in enumerate(variants):
        path = rewritten(valid, work / f"ok-{i}.gguf", **kwargs)
        cases.append(dict(id=f"variant {i}: {kwargs}", path=str(path), generate="hello"))
    outcomes = load_all_in_children(cases)
    check_outcomes(cases, outcomes, allow_load=True)
    for i in (0, 2, 3, 4, 5, 6, 7):
        assert outcomes[cases[i]["id"]].get("loaded"), outcomes[cases[i]["id"]]


# ---- structurally wrong models (tinymodels faults) ----

# tests/python/api/test_typed_errors.py checks the messages of the tinymodels faults in-process; here the ones at
# llama.cpp's limits, in a child process.
STRUCTURAL = [
    ("513 layers declared", dict(declared_layers=513), "ModelLoadError", "block_count is 513"),
    ("512 layers declared, 2 present", dict(declared_layers=512), "ModelLoadError", "declares 512 layers"),
    ("1 layer declared, 2 present", dict(declared_layers=1), "ModelLoadError", "wrong number of tensors"),
    ("kv heads not dividing heads", dict(n_head=4, n_head_kv=3), "ModelLoadError", "head_count_kv"),
    ("missing output norm", dict(missing_tensor="output_norm.weight"), "ModelLoadError", "output_norm.weight"),
    ("missing embeddings", dict(missing_tensor="token_embd.weight"), "ModelLoadError", "token_embd.weight"),
    ("wrong output shape", dict(wrong_shape="output.weight"), "ModelLoadError", "output.weight.*wrong shape"),
]


def test_structurally_wrong_models(work):
    cases = []
    for i, (name, faults, error, match) in enumerate(STRUCTURAL):
        path = tinymodels.make_model(work / f"struct-{i}.gguf", **{**TINY_KW, **faults})
        cases.append(dict(id=name, path=str(path), generate="hello", error=error, match=match))
    check_outcomes(cases, load_all_in_children(cases))


def test_chat_template_that_does_not_parse(work):
    path = tinymodels.make_model(work / "badtemplate.gguf", **TINY_KW,
                                 chat_template="{% for m in messages %}{{ m.content ")
    cases = [dict(id="template", path=str(path), messages=[{"role": "user", "content": "hi"}], error="TemplateError",
                  match="chat template")]
    check_outcomes(cases, load_all_in_children(cases))


# ---- NaN weights: GenerationError, not garbage (quantized too; f32 in test_typed_errors.py) ----

@pytest.mark.parametrize("quant", ["f32", "q8_0", "q4_0"])
def test_nan_weights_raise_generation_error_in_a_child(work, quant):
    path = tinymodels.make_model(work / f"nan-{quant}.gguf", **TINY_KW, quant=quant, nan_weights=True)
    cases = [dict(id=f"nan {quant}", path=str(path), generate="hello", error="GenerationError", match="non-finite")]
    check_outcomes(cases, load_all_in_children(cases))


# ---- every architecture name llama.cpp knows, on llama tensors ----

LLAMA_ARCH_SOURCE = REPO / "third_party" / "llama.cpp" / "src" / "llama-arch.cpp"
SOME_ARCHITECTURES = ["llama", "qwen2", "qwen3", "qwen2moe", "gemma", "gemma2", "gemma3", "phi2", "phi3", "gpt2",
                      "falcon", "mamba", "rwkv6", "bert", "t5", "t5encoder", "deepseek2", "command-r", "olmo",
                      "smallthinker", "llada-moe", "paddleocr", "minicpm", "baichuan", "dream", "wavtokenizer-dec",
                      "clip"]


def known_architectures() -> list[str]:
    if LLAMA_ARCH_SOURCE.exists():
        names = re.findall(r'\{\s*LLM_ARCH_\w+,\s*"([^"]+)"\s*\}', LLAMA_ARCH_SOURCE.read_text())
        if len(names) > 50:
            return names
    return SOME_ARCHITECTURES


def test_every_architecture_name(valid, work):
    """The tiny llama model relabelled as each architecture: llama.cpp refuses most (missing
    tensors), some load and generate; none may crash."""
    cases = []
    for name in known_architectures():
        path = rewritten(valid, work / f"arch-{re.sub(r'[^a-z0-9_-]', '_', name)}.gguf", arch=name)
        cases.append(dict(id=f"arch {name}", path=str(path), generate="hello\nworld"))
    outcomes = load_all_in_children(cases, timeout=300)
    check_outcomes(cases, outcomes, allow_load=True)
    assert outcomes["arch llama"].get("loaded")


# ---- seeded random damage ----

def random_damage(path, work, seed: int, n: int) -> list[dict]:
    """Files with 1-3 bytes changed in the metadata before the token list or in the tensor
    infos (where the hyperparameters and shapes live)."""
    lay = layout(path)
    data = Path(path).read_bytes()
    regions = [(0, lay.kv("tokenizer.ggml.tokens").key_offset), (lay.tensors[0].name_offset, lay.data_offset)]
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            lo, hi = rng.choice(regions)
            pos = rng.randrange(lo, hi)
            damaged[pos] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256), damaged[pos] ^ (1 << rng.randrange(8))])
        out = work / f"random-{seed}-{i}.gguf"
        out.write_bytes(bytes(damaged))
        cases.append(dict(id=f"seed {seed} file {i}", path=str(out), generate="hello world",
                          messages=[{"role": "user", "content": "hi"}]))
    return cases


def numeric_metadata_extremes(path, work) -> list[dict]:
    """Each integer, float and bool metadata value replaced by extremes, in place."""
    lay = layout(path)
    cases = []
    for kv in lay.kvs:
        if kv.type in (4, 5):  # u32 / i32
            values = [u32(v) for v in (0, 1, 3, 7, 65, 513, 1000, 2**31 - 1, 2**32 - 1)]
        elif kv.type == 6:  # f32
            values = [struct.pack("<f", v) for v in (0.0, -1.0, float("nan"), float("inf"), 1e30)]
        elif kv.type == 7:  # bool
            values = [b"\x00", b"\x01", b"\x02"]
        else:
            continue
        for j, value in enumerate(values):
            out = patched(path, work / f"extreme-{kv.key}-{j}.gguf", {kv.value_offset: value})
            cases.append(dict(id=f"{kv.key} = {value.hex()}", path=str(out), generate="hello world",
                              messages=[{"role": "user", "content": "hi"}]))
    return cases


def test_random_byte_damage(valid, tiny_large, work):
    cases = random_damage(valid, work, seed=1, n=150) + random_damage(tiny_large, work, seed=2, n=100)
    check_outcomes(cases, load_all_in_children(cases, timeout=300), allow_load=True)


def test_numeric_metadata_extremes(valid, work):
    cases = numeric_metadata_extremes(valid, work)
    assert len(cases) > 50
    check_outcomes(cases, load_all_in_children(cases, timeout=300), allow_load=True)


@pytest.mark.slow
def test_random_byte_damage_many_seeds(valid, tiny_large, tiny_q4, work):
    cases = []
    for seed in range(10, 16):
        cases += random_damage([valid, tiny_large, tiny_q4][seed % 3], work, seed=seed, n=200)
    check_outcomes(cases, load_all_in_children(cases, timeout=600), allow_load=True)


# ---- pairs whose vocabularies differ ----

def test_vocab_incompatible_pair(tiny_small, tiny_incompatible):
    """Different tokenizers pair (translated); the methods that need one vocabulary refuse."""
    for small, large in ((tiny_small, tiny_incompatible), (tiny_incompatible, tiny_small)):
        with fsgen.Pair(small, large, n_ctx=128, n_threads=1) as pair:
            assert pair.vocab["kind"] == "translated"
            with pytest.raises(fsgen.IncompatibleVocabError, match=r"differ at token \d+"):
                pair.generate("hello", method="contrastive", max_tokens=4)


def test_vocab_of_very_different_size(tiny_small, tiny_factory):
    big = tiny_factory("tiny_vocab_plus_200", extra_tokens=200, seed=4)
    with fsgen.Pair(tiny_small, big, n_ctx=128, n_threads=1) as pair:
        assert pair.vocab["kind"] == "translated" and pair.vocab["shared_tokens"] == 299 - 2
        with pytest.raises(fsgen.IncompatibleVocabError, match="vocabularies of 299 and 499 tokens"):
            pair.generate("hello", method="contrastive", max_tokens=4)
        assert pair.generate("hello", method="speculative", max_tokens=8).stats["vocab_translated"] == 1


def test_proxy_triple_with_mismatched_base(tiny_small, tiny_large, tiny_incompatible):
    with pytest.raises(fsgen.IncompatibleVocabError, match="differ at token"):
        fsgen.Pair(tiny_small, tiny_large, small_base=tiny_incompatible, n_ctx=128, n_threads=1)


def test_models_stay_usable_after_a_refused_pair(tiny_small, tiny_incompatible):
    """Model objects passed to a refused Pair belong to the caller: still open and working."""
    with fsgen.Model(tiny_small, n_ctx=128, n_threads=1) as small, \
            fsgen.Model(tiny_incompatible, n_ctx=128, n_threads=1) as other:
        expected = small.generate("hello", max_tokens=6).tokens
        with pytest.raises(fsgen.IncompatibleVocabError):
            fsgen.Pair(small, small, small_base=other)
        with fsgen.Pair(small, other) as translated:
            assert translated.vocab["kind"] == "translated"
        assert not small.closed and not other.closed
        assert small.generate("hello", max_tokens=6).tokens == expected


def test_compatible_vocab_with_extra_tokens(tiny_small, tiny_extra_vocab, tiny_large):
    with fsgen.Pair(tiny_small, tiny_extra_vocab, small_base=tiny_small, n_ctx=128, n_threads=1) as pair:
        for method in ("speculative", "proxy"):
            assert pair.generate("hello", method=method, max_tokens=6).finish_reason == "length"


# ---- real files ----

VOCAB_ONLY_FILES = sorted((REPO / "third_party" / "llama.cpp" / "models")
                          .glob("ggml-vocab-*.gguf"))


def test_llama_cpp_vocab_only_files_are_refused():
    """llama.cpp ships GGUF files that hold a vocabulary and no weights (many architectures and
    tokenizers): each is refused with a message, none crashes."""
    if not VOCAB_ONLY_FILES:
        skip_or_fail("llama.cpp's vocab-only test files (third_party/llama.cpp/models/ggml-vocab-*.gguf) are missing")
    cases = [dict(id=p.name, path=str(p), error="ModelLoadError", match="not found|tensor") for p in VOCAB_ONLY_FILES]
    check_outcomes(cases, load_all_in_children(cases, timeout=300))


def test_a_real_model_passes_the_checks(smollm2):
    """The checks refuse damaged files, not real ones (SmolLM2: llama, 9 heads, 3 KV heads)."""
    cases = [dict(id="smollm2", path=str(smollm2), generate="Hello", messages=[{"role": "user", "content": "hi"}])]
    outcomes = load_all_in_children(cases, timeout=300)
    assert outcomes["smollm2"].get("loaded"), outcomes
