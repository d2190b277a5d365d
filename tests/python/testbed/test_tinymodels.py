"""Tests of the tiny-model test bed itself (tinymodels.py and the conftest fixtures); no fsgen."""
from __future__ import annotations

import gguf
import numpy as np
import pytest

import tinymodels

F32 = gguf.GGMLQuantizationType.F32
MATRICES = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def tensors(path) -> dict:
    return {t.name: t for t in gguf.GGUFReader(path).tensors}


def expected_shapes(n_layer, n_embd, n_head, n_head_kv, n_ff, n_vocab=299):
    """ggml shapes (ne: columns first) of a valid llama model."""
    kv = n_embd // n_head * n_head_kv
    shapes = {"token_embd.weight": [n_embd, n_vocab], "output_norm.weight": [n_embd],
              "output.weight": [n_embd, n_vocab]}
    for i in range(n_layer):
        shapes.update({
            f"blk.{i}.attn_norm.weight": [n_embd], f"blk.{i}.ffn_norm.weight": [n_embd],
            f"blk.{i}.attn_q.weight": [n_embd, n_embd], f"blk.{i}.attn_k.weight": [n_embd, kv],
            f"blk.{i}.attn_v.weight": [n_embd, kv], f"blk.{i}.attn_output.weight": [n_embd, n_embd],
            f"blk.{i}.ffn_gate.weight": [n_embd, n_ff], f"blk.{i}.ffn_up.weight": [n_embd, n_ff],
            f"blk.{i}.ffn_down.weight": [n_ff, n_embd],
        })
    return shapes


def bpe(text: str, merges: list[str]) -> list[str]:
    """Reference byte-level BPE on one pre-token: repeatedly merge the best-ranked pair."""
    byte_chars = tinymodels.bytes_to_unicode()
    parts = [byte_chars[b] for b in text.encode()]
    ranks = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
    while True:
        pairs = [(ranks.get(p, len(ranks)), i) for i, p in enumerate(zip(parts, parts[1:]))]
        if not pairs or min(pairs)[0] == len(ranks):
            return parts
        _, i = min(pairs)
        parts[i:i + 2] = [parts[i] + parts[i + 1]]


def test_same_arguments_write_the_same_bytes(tmp_path):
    a = tinymodels.make_model(tmp_path / "a.gguf", seed=5, quant="q4_0")
    b = tinymodels.make_model(tmp_path / "b.gguf", seed=5, quant="q4_0", name="a")
    c = tinymodels.make_model(tmp_path / "c.gguf", seed=6, quant="q4_0", name="a")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_metadata_reads_back(tiny_small):
    meta = tinymodels.read_metadata(tiny_small)
    assert meta["general.architecture"] == "llama"
    assert meta["general.name"] == "tiny_small"
    assert meta["llama.block_count"] == 2
    assert meta["llama.embedding_length"] == 64
    assert meta["llama.attention.head_count"] == 4
    assert meta["llama.attention.head_count_kv"] == 4
    assert meta["llama.feed_forward_length"] == 128
    assert meta["llama.context_length"] == 2048
    assert meta["llama.rope.dimension_count"] == 16
    assert meta["tokenizer.ggml.model"] == "gpt2"
    assert meta["tokenizer.ggml.pre"] == "default"
    assert meta["tokenizer.ggml.add_bos_token"] is False
    tokens = meta["tokenizer.ggml.tokens"]
    assert tokens[meta["tokenizer.ggml.bos_token_id"]] == "<|endoftext|>"
    assert tokens[meta["tokenizer.ggml.eos_token_id"]] == "<|im_end|>"
    assert meta["tokenizer.chat_template"] == tinymodels.CHATML_TEMPLATE
    assert "<|im_start|>" in meta["tokenizer.chat_template"]  # what llama.cpp detects as chatml


@pytest.mark.parametrize("name", ["tiny_small", "tiny_large"])
def test_tensor_shapes(name, tiny_factory):
    args = {**dict(n_layer=2, n_embd=64, n_head=4, n_head_kv=4, n_ff=128), **tinymodels.FIXTURE_MODELS[name]}
    path = tiny_factory(name, **tinymodels.FIXTURE_MODELS[name])
    found = {n: [int(d) for d in t.shape] for n, t in tensors(path).items()}
    assert found == expected_shapes(args["n_layer"], args["n_embd"], args["n_head"],
                                    args["n_head_kv"], args["n_ff"])
    assert all(t.tensor_type == F32 for t in tensors(path).values())


def test_parameter_counts(tiny_small, tiny_large, tiny_q4):
    assert tinymodels.parameter_count(tiny_small) == 120_512
    assert tinymodels.parameter_count(tiny_large) == 667_520
    assert tinymodels.parameter_count(tiny_q4) == 120_512
    assert 120_512 == sum(np.prod(s) for s in expected_shapes(2, 64, 4, 4, 128).values())


def test_tokenizer_tables_are_consistent(tiny_small):
    meta = tinymodels.read_metadata(tiny_small)
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    merges = meta["tokenizer.ggml.merges"]
    assert len(tokens) == len(types) == meta["llama.vocab_size"] == 256 + len(merges) + 3
    assert len(set(tokens)) == len(tokens)
    assert tokens[:256] == [tinymodels.bytes_to_unicode()[b] for b in range(256)]
    for rank, merge in enumerate(merges):
        left, right = merge.split(" ")
        assert tokens.index(left) < 256 + rank and tokens.index(right) < 256 + rank, merge
        assert tokens[256 + rank] == left + right
    assert tokens[-3:] == tinymodels.SPECIAL_TOKENS
    assert types == [1] * (len(tokens) - 3) + [3] * 3
    # The merges turn common words into single tokens ("Ġ" is the space byte).
    assert bpe("hello", merges) == ["hello"]
    assert bpe(" world", merges) == ["Ġworld"]
    assert bpe(" the", merges) == ["Ġthe"]
    assert bpe("the", merges) == ["the"]


def test_incompatible_vocab_differs_only_in_token_text(tiny_small, tiny_incompatible):
    a, b = tinymodels.read_metadata(tiny_small), tinymodels.read_metadata(tiny_incompatible)
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"):
        assert a[key] == b[key]
    ta, tb = a["tokenizer.ggml.tokens"], b["tokenizer.ggml.tokens"]
    assert len(ta) == len(tb)
    assert sum(x != y for x, y in zip(ta, tb)) == 6


def test_extra_vocab_is_compatible(tiny_small, tiny_extra_vocab):
    a, b = tinymodels.read_metadata(tiny_small), tinymodels.read_metadata(tiny_extra_vocab)
    ta, tb = a["tokenizer.ggml.tokens"], b["tokenizer.ggml.tokens"]
    assert 0 < len(tb) - len(ta) <= 128
    assert tb[:len(ta)] == ta
    assert a["tokenizer.ggml.eos_token_id"] == b["tokenizer.ggml.eos_token_id"]
    assert tensors(tiny_extra_vocab)["output.weight"].shape[1] == len(tb)


@pytest.mark.parametrize("name, qtype", [("tiny_q8", gguf.GGMLQuantizationType.Q8_0),
                                         ("tiny_q4", gguf.GGMLQuantizationType.Q4_0)])
def test_quantized_matrices(name, qtype, tiny_factory, tiny_small):
    found = tensors(tiny_factory(name, **tinymodels.FIXTURE_MODELS[name]))
    for tensor_name, tensor in found.items():
        is_matrix = tensor_name == "output.weight" or (
            tensor_name.startswith("blk.") and tensor_name.split(".")[2] in MATRICES)
        assert tensor.tensor_type == (qtype if is_matrix else F32), tensor_name
    # Same weights as tiny_small, up to quantization error.
    small = tensors(tiny_small)["blk.0.ffn_up.weight"].data
    restored = gguf.quants.dequantize(found["blk.0.ffn_up.weight"].data, qtype)
    assert np.abs(restored - small).max() < 0.2 * np.abs(small).max()


def test_flat_model_has_smaller_output_weights(tiny_small, tiny_flat):
    sharp = np.abs(tensors(tiny_small)["output.weight"].data).mean()
    flat = np.abs(tensors(tiny_flat)["output.weight"].data).mean()
    assert flat == pytest.approx(sharp * tinymodels.FLAT_LOGIT_SCALE / tinymodels.DEFAULT_LOGIT_SCALE,
                                 rel=1e-5)


@pytest.mark.parametrize("chain_skip", [0.0, 0.2])
def test_successor_chain_is_one_forward_cycle(chain_skip):
    tokens, _, _, bos_id, eos_id = tinymodels.build_vocab()
    successor = tinymodels.successor_table(tokens, bos_id, eos_id, chain_skip=chain_skip)
    start = successor[bos_id]
    cycle, token = [], start
    while token not in cycle:
        cycle.append(token)
        token = successor[token]
    assert token == start  # a cycle, no tail into a shorter loop
    assert len(cycle) > (100 if chain_skip else 140)
    # Whole characters only: the greedy text is valid UTF-8 even though "é" takes two tokens.
    byte_of = {c: b for b, c in tinymodels.bytes_to_unicode().items()}
    text = b"".join(bytes(byte_of[c] for c in tokens[t]) for t in cycle).decode("utf-8")
    assert "é" in text and "😀" in text
    # Bytes outside the chain (e.g. a lone UTF-8 continuation byte) favour nothing.
    assert all(successor[t] == -1 for t in range(0x80, 0xC0) if t not in cycle)


def test_faults_change_what_is_written(tmp_path):
    make = tinymodels.make_model
    missing = make(tmp_path / "missing.gguf", missing_tensor="blk.1.ffn_down.weight")
    assert "blk.1.ffn_down.weight" not in tensors(missing)
    wrong = make(tmp_path / "wrong.gguf", wrong_shape="blk.0.attn_q.weight")
    assert [int(d) for d in tensors(wrong)["blk.0.attn_q.weight"].shape] == [64, 65]
    layers = make(tmp_path / "layers.gguf", declared_layers=1000)
    assert tinymodels.read_metadata(layers)["llama.block_count"] == 1000
    assert not any(n.startswith("blk.2.") for n in tensors(layers))
    assert tinymodels.read_metadata(make(tmp_path / "h0.gguf", n_head=0))["llama.attention.head_count"] == 0
    assert tinymodels.read_metadata(make(tmp_path / "h5.gguf", n_head=5))["llama.attention.head_count"] == 5
    arch = tinymodels.read_metadata(make(tmp_path / "arch.gguf", arch="notanarch"))
    assert arch["general.architecture"] == "notanarch" and arch["notanarch.block_count"] == 2
    nan = tensors(make(tmp_path / "nan.gguf", nan_weights=True))["output.weight"].data
    assert np.isnan(nan[:, 0]).all() and np.isfinite(nan[:, 1:]).all()
    bad = make(tmp_path / "bad.gguf", chat_template="{% bad jinja")
    assert tinymodels.read_metadata(bad)["tokenizer.chat_template"] == "{% bad jinja"
    assert "tokenizer.chat_template" not in tinymodels.read_metadata(make(tmp_path / "none.gguf", chat_template=None))
    with pytest.raises(TypeError):
        make(tmp_path / "typo.gguf", missing_tensors="x")


def test_eos_after_leads_to_end_of_turn(tmp_path):
    tokens, _, _, bos_id, eos_id = tinymodels.build_vocab()
    successor = tinymodels.successor_table(tokens, bos_id, eos_id, eos_after=tokens.index("."))
    assert successor[tokens.index(".")] == eos_id


@pytest.mark.parametrize("name", sorted(tinymodels.FIXTURE_MODELS))
def test_every_fixture_model_builds(name, tiny_factory):
    meta = tinymodels.read_metadata(tiny_factory(name, **tinymodels.FIXTURE_MODELS[name]))
    assert meta["general.name"] == name
    spm = tinymodels.FIXTURE_MODELS[name].get("vocab") == "spm"
    assert meta["tokenizer.ggml.eos_token_id"] == (2 if spm else 298)


def test_spm_vocab_is_sentencepiece_style(tiny_spm):
    """llama.cpp's "llama" tokenizer: BOS added, a prefix space, scored pieces, byte fallback."""
    import fsgen
    meta = tinymodels.read_metadata(tiny_spm)
    assert meta["tokenizer.ggml.model"] == "llama"
    with fsgen.Model(tiny_spm, n_ctx=64, n_threads=1) as model:
        ids = model.tokenize("hello world")
        assert ids[0] == 1 and [model.detokenize([i]) for i in ids[1:]] == [" ", "hello", " world"]
        ids = model.tokenize("é\n", special=False)
        assert model.detokenize(ids[1:2]) == " "  # the prefix space
        assert all(3 <= i < 259 for i in ids[2:])  # byte tokens: no piece holds "é" or a newline
        assert model.detokenize(ids[1:]) == " é\n"
