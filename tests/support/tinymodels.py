"""Tiny llama-architecture GGUF models, written at test time (0.1-3 MB, milliseconds each).

The weights are random but arranged so that tests are reliable:

* The vocabulary is GPT-2 style byte-level BPE: 256 byte tokens (id == byte value), a few dozen
  merges of common English pairs, then ``<|endoftext|>`` (BOS), ``<|im_start|>``, ``<|im_end|>``
  (EOS), like Qwen with ``add_bos_token`` false and a ChatML template. ``vocab="spm"`` is
  SentencePiece style instead (llama.cpp's "llama" tokenizer, like Llama 2): ``<unk>``, ``<s>``
  (BOS, added), ``</s>`` (EOS), 256 byte-fallback tokens ``<0x00>``..., the printable ASCII
  characters (space as ``▁``) and the same merges as scored pieces, with a prefix space.
* The output layer carries a "successor chain": one random cycle through the printable tokens that
  every model built with the same vocabulary shares, whatever its seed or size. Greedy decoding
  therefore walks through the vocabulary instead of repeating one token, models of different
  sizes mostly agree (so speculative decoding accepts many drafts, not all), and argmax margins are
  large enough that exact-equality tests do not depend on float rounding. The random layers make
  every logit depend on the context, but the argmax only at a few percent of the steps.
* ``logit_scale`` multiplies the logits: the default makes greedy margins large,
  ``MIXED_LOGIT_SCALE`` gives confident and unsure steps (router tests), ``FLAT_LOGIT_SCALE``
  broad distributions (sampling tests).

Faults for reliability tests are keyword arguments of ``make_model`` (see ``FAULTS``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import gguf

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# A template that llama.cpp's built-in list does not recognise (none of its markers), so only the
# Jinja engine renders it: loops, conditionals, filters, bos_token/eos_token and raise_exception.
CUSTOM_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}[[sys]] {{ m['content'] | trim }}\n"
    "{% elif m['role'] == 'user' %}Q{{ loop.index }}: {{ m['content'] }}\n"
    "{% elif m['role'] == 'assistant' %}A: {{ m['content'] }}{{ eos_token }}\n"
    "{% else %}{{ raise_exception('unknown role: ' + m['role']) }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}A:{% endif %}"
)

# Measured with llama.cpp on the default 2-layer model: at 10, greedy top-1 minus top-2 logit is
# above 1 at ~98% of generated positions, entropy ~0; at 2, the entropy straddles 0.5 nats (the fs
# router's default threshold) about half the time; at 0.5 it is ~5.5 nats (uniform: 5.7).
DEFAULT_LOGIT_SCALE = 10.0
MIXED_LOGIT_SCALE = 2.0
FLAT_LOGIT_SCALE = 0.5

CHAIN_SEED = 1234  # shared by all models so that different sizes/seeds predict alike

# Merges are applied in this order (rank). Each part must already be a token when the merge is
# listed; the merged text becomes the next token id.
DEFAULT_MERGES = [
    "Ġ t", "h e", "i n", "Ġ a", "e r", "o n", "r e", "Ġ s", "Ġ w", "o r",
    "t he", "Ġt he", "t h", "a t", "e n", "i s", "Ġ o", "Ġ c", "a n", "e s",
    "in g", "Ġ b", "e d", "l l", "l o", "Ġ f", "o u", "Ġ h", "l d", "i t",
    "he ll", "hell o", "Ġw or", "Ġwor ld", "Ġ i", "Ġ m", "Ġa n", "Ġan d", "Ġo f", "Ġt o",
]
# Same number of merges, so the same vocabulary size, but the last six token texts differ.
INCOMPATIBLE_MERGES = DEFAULT_MERGES[:-6] + ["Ġ p", "a l", "a r", "o m", "l e", "Ġ d"]

# Characters the successor chain spells byte by byte (their bytes appear nowhere else in it).
MULTIBYTE_CHARS = ["é", "ж", "€", "😀"]

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Fault name -> default (no fault). See make_model.
FAULTS = {
    "missing_tensor": None,   # tensor name left out of the file
    "wrong_shape": None,      # tensor name written with one row too many
    # block_count in the metadata instead of n_layer. Above 512 (LLAMA_MAX_LAYERS) llama.cpp
    # aborts the process (GGML_ASSERT) instead of failing the load: run such a test in a subprocess.
    "declared_layers": None,
    "arch": "llama",          # general.architecture; another name gives a valid GGUF llama.cpp does not know
    "nan_weights": False,     # NaN in output.weight, so every logit is NaN
}


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character mapping (space is 'Ġ', newline 'Ċ')."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def build_vocab(vocab: str = "default", extra_tokens: int = 0):
    """Returns (tokens, token_types, merges, bos_id, eos_id)."""
    merges = {"default": DEFAULT_MERGES, "incompatible": INCOMPATIBLE_MERGES}[vocab]
    byte_chars = bytes_to_unicode()
    tokens = [byte_chars[b] for b in range(256)]
    for merge in merges:
        left, right = merge.split(" ")
        assert left in tokens and right in tokens, merge
        assert left + right not in tokens, merge
        tokens.append(left + right)
    types = [gguf.TokenType.NORMAL] * len(tokens)
    bos_id = len(tokens)
    eos_id = bos_id + 2
    tokens += SPECIAL_TOKENS
    types += [gguf.TokenType.CONTROL] * len(SPECIAL_TOKENS)
    # Extra tokens go after the specials so that the ids shared with the base vocabulary keep
    # their text: the vocabulary stays compatible.
    tokens += [f"extra{i}" for i in range(extra_tokens)]
    types += [gguf.TokenType.NORMAL] * extra_tokens
    return tokens, [int(t) for t in types], list(merges), bos_id, eos_id


SPM_SPECIALS = ["<unk>", "<s>", "</s>"]


def build_spm_vocab():
    """Returns (tokens, token_types, scores, bos_id, eos_id, units): a SentencePiece-style vocabulary
    spelling the BPE vocabulary's pieces ("Ġ" -> "▁"), and the successor chain's units in it (the
    BPE units' texts, in their order, so that both vocabularies' models write alike)."""
    tokens = list(SPM_SPECIALS) + [f"<0x{b:02X}>" for b in range(256)]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    chars = [chr(b) for b in range(0x20, 0x7F)]
    tokens += ["▁" if c == " " else c for c in chars]
    merged = ["".join(m.split(" ")).replace("Ġ", "▁") for m in DEFAULT_MERGES]
    tokens += merged
    types += [gguf.TokenType.NORMAL] * (len(chars) + len(merged))
    # SentencePiece merges the pair whose joined piece scores highest: the BPE ranks, in order.
    scores = [0.0] * (3 + 256) + [-1000.0] * len(chars) + [-float(rank) for rank in range(len(merged))]
    byte_id = {b: 3 + b for b in range(256)}
    units = [[tokens.index("▁" if b == 0x20 else chr(b))] for b in range(0x20, 0x7F)] + [[byte_id[0x0A]]]
    units += [[tokens.index(text)] for text in merged]
    units += [[byte_id[b] for b in ch.encode()] for ch in MULTIBYTE_CHARS]
    return tokens, [int(t) for t in types], scores, 1, 2, units


def bpe_units(bos_id: int) -> list[list[int]]:
    units = [[b] for b in list(range(0x20, 0x7F)) + [ord("\n")]]
    units += [[i] for i in range(256, bos_id)]  # merges
    units += [list(ch.encode()) for ch in MULTIBYTE_CHARS]  # byte tokens: id == byte value
    return units


def successor_table(tokens: list[str], bos_id: int, eos_id: int, eos_after: int | None = None,
                    chain_skip: float = 0.0, extra_after: tuple[int, ...] = (), units=None, specials=None):
    """successor[t] = the token that the output layer favours after token t (-1: none).

    The chain is one random cycle through "units": printable ASCII bytes, newline, the merges,
    and a few multi-byte UTF-8 characters spelled byte by byte (so that greedy text is valid
    UTF-8 yet splits characters across tokens). The cycle depends only on the vocabulary, so all
    models with the same vocabulary share it. With chain_skip > 0, that fraction of units jumps
    over the next unit: still one forward cycle (no short loops), but a model built so disagrees
    with a chain_skip=0 model at those steps, each with a confident argmax. extra_after: token ids
    whose favoured successor is an extra token (the i-th one after the i-th id), which leads back
    to where the chain went: a detour through tokens only this vocabulary has.
    """
    units = bpe_units(bos_id) if units is None else units
    specials = list(range(bos_id, bos_id + len(SPECIAL_TOKENS))) if specials is None else specials
    rng = np.random.default_rng(CHAIN_SEED)
    order = [units[i] for i in rng.permutation(len(units))]
    skips = rng.random(len(order)) < chain_skip
    starts = [unit[0] for unit in order]
    successor = np.full(len(tokens), -1, dtype=np.int64)
    for i, unit in enumerate(order):
        successor[unit[:-1]] = unit[1:]
        successor[unit[-1]] = starts[(i + 1 + skips[i]) % len(order)]
    # The special tokens lead into the chain (a chat prompt may end in one); the other bytes
    # favour nothing, since giving them successors would dilute the chain.
    for i, special in enumerate(specials):
        successor[special] = starts[i]
    if eos_after is not None:
        successor[eos_after] = eos_id
    first_extra = bos_id + len(SPECIAL_TOKENS)
    for i, token in enumerate(extra_after):
        successor[first_extra + i] = successor[token]
        successor[token] = first_extra + i
    return successor


# Keyword arguments of make_model for each model the tests' fixtures build (tests/conftest.py).
FIXTURE_MODELS = {
    "tiny_small": dict(n_layer=2, n_embd=64, n_head=4, n_head_kv=4, n_ff=128, seed=0),
    # Grouped-query attention, another seed and size; chain_skip makes it disagree with
    # tiny_small on about a fifth of the greedy steps, so speculative decoding both accepts
    # and rejects drafts.
    "tiny_large": dict(n_layer=4, n_embd=128, n_head=4, n_head_kv=2, n_ff=256, seed=1,
                       chain_skip=0.2),
    "tiny_incompatible": dict(vocab="incompatible", seed=2),
    "tiny_extra_vocab": dict(extra_tokens=16, seed=3),
    # Same weights as tiny_small, quantized: llama.cpp's AMX kernels only see quantized weights.
    "tiny_q8": dict(quant="q8_0", seed=0),
    "tiny_q4": dict(quant="q4_0", seed=0),
    "tiny_flat": dict(logit_scale=FLAT_LOGIT_SCALE, seed=0),
    # Entropy above and below the fs router's 0.5-nat default threshold, about half each.
    "tiny_mixed": dict(logit_scale=MIXED_LOGIT_SCALE, seed=0),
    # The "base" of tiny_small for proxy tuning: same shape and vocabulary, other weights.
    "tiny_small_base": dict(n_layer=2, n_embd=64, n_head=4, n_head_kv=4, n_ff=128, seed=4),
    # SentencePiece-style, writing what tiny_small writes (the same chain in text), with BOS/EOS
    # <s>/</s> and no ChatML tokens: a translated pair with the others.
    "tiny_spm": dict(vocab="spm", seed=6, chat_template=CUSTOM_TEMPLATE),
}


def make_model(path, *, n_layer=2, n_embd=64, n_head=4, n_head_kv=4, n_ff=128, seed=0,
               logit_scale=DEFAULT_LOGIT_SCALE, chain_strength=2.0, chain_skip=0.0,
               layer_scale=1.0, vocab="default", extra_tokens=0, quant="f32",
               chat_template=CHATML_TEMPLATE, name=None, context_length=2048,
               rope_freq_base=10000.0, rms_eps=1e-5, eos_after=None, extra_after=(), permute_ids=None,
               **faults):
    """Writes a tiny llama GGUF to `path` and returns the path.

    vocab: "default", "incompatible" (same size and specials, some token texts differ) or "spm"
        (SentencePiece style, see the module docstring; no extra_tokens).
    extra_tokens: N more normal tokens after the specials (a different size, still compatible).
    quant: "f32", "q8_0" or "q4_0" (the 2-D layer and output matrices; embeddings and norms
        stay f32).
    chat_template: the ChatML template by default; None writes none; any string is written as is.
    logit_scale: about the std of the logits; the favoured successor (see successor_table)
        stands ~sqrt(n_embd) times that above the rest.
    chain_strength: weight of the shared successor chain relative to random output weights
        (0 gives a purely random output layer).
    chain_skip: fraction of chain steps this model skips ahead (see successor_table).
    layer_scale: std multiplier of the layer weights; larger makes the context matter more
        and the chain less.
    eos_after: a token text whose favoured successor is <|im_end|> instead of the chain's, for
        tests that need generation to end by itself (prompt ending in that token).
    extra_after: token texts each followed by one of the extra tokens (extra0 after the first, ...)
        and then by its usual successor: text that only a model with these extra tokens writes.
    n_head: written as given; 0, or a value that does not divide n_embd, gives an invalid model
        (the tensors keep the shape of a valid layout).
    permute_ids: a seed: the same model (the weights drawn as without it) with its token ids
        shuffled, the vocabulary, embeddings and output rows alike: it reads and writes the same
        text as the unshuffled model, under other ids (a translated pair with it).
    faults: see FAULTS.
    """
    unknown = set(faults) - set(FAULTS)
    if unknown:
        raise TypeError(f"unknown fault(s): {sorted(unknown)}")
    fault = {**FAULTS, **faults}
    qtype = {"f32": None, "q8_0": gguf.GGMLQuantizationType.Q8_0,
             "q4_0": gguf.GGMLQuantizationType.Q4_0}[quant]
    file_type = {"f32": gguf.LlamaFileType.ALL_F32, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
                 "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[quant]

    spm = vocab == "spm"
    if spm:
        if extra_tokens:
            raise ValueError("extra_tokens applies to the BPE vocabularies")
        tokens, token_types, scores, bos_id, eos_id, units = build_spm_vocab()
        specials = [bos_id, eos_id]
    else:
        tokens, token_types, merges, bos_id, eos_id = build_vocab(vocab, extra_tokens)
        units = specials = None
    n_vocab = len(tokens)
    # order[new id] = old id: everything indexed by token is written in the new order.
    order = (np.random.default_rng(permute_ids).permutation(n_vocab) if permute_ids is not None
             else np.arange(n_vocab))
    new_id = np.argsort(order)
    # Tensor layout of a valid model; n_head itself goes into the metadata unchanged so that an
    # invalid head count is a metadata fault, not a Python error here.
    valid_heads = n_head > 0 and n_embd % n_head == 0 and n_head % max(n_head_kv, 1) == 0
    kv_dim = n_embd // n_head * n_head_kv if valid_heads else n_embd

    path = Path(path)
    writer = gguf.GGUFWriter(path, fault["arch"])
    writer.add_name(name or path.stem)
    writer.add_file_type(int(file_type))
    if qtype is not None:
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer if fault["declared_layers"] is None else fault["declared_layers"])
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    if n_head > 0:
        writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_rope_freq_base(rope_freq_base)
    writer.add_layer_norm_rms_eps(rms_eps)
    writer.add_vocab_size(n_vocab)

    if spm:
        writer.add_tokenizer_model("llama")
        writer.add_token_list([tokens[i] for i in order])
        writer.add_token_scores([scores[i] for i in order])
        writer.add_token_types([token_types[i] for i in order])
        writer.add_add_bos_token(True)
        writer.add_add_space_prefix(True)
    else:
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("default")
        writer.add_token_list([tokens[i] for i in order])
        writer.add_token_types([token_types[i] for i in order])
        writer.add_token_merges(merges)
        writer.add_add_bos_token(False)
    writer.add_bos_token_id(int(new_id[bos_id]))
    writer.add_eos_token_id(int(new_id[eos_id]))
    writer.add_pad_token_id(int(new_id[bos_id]))
    if spm:
        writer.add_unk_token_id(int(new_id[0]))
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    rng = np.random.default_rng(seed)

    def normal(*shape, std=1.0):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)

    def add(name, array, quantize=False):
        if name == fault["missing_tensor"]:
            return
        if name == fault["wrong_shape"]:
            array = np.concatenate([array, array[:1]])
        array = np.ascontiguousarray(array, dtype=np.float32)
        if quantize and qtype is not None:
            with np.errstate(invalid="ignore"):  # NaN weights (a fault) quantize to NaN blocks
                writer.add_tensor(name, gguf.quants.quantize(array, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, array)

    # numpy shapes are (rows, columns) = ggml's ne reversed: a matrix maps columns -> rows.
    embeddings = normal(n_vocab, n_embd)
    add("token_embd.weight", embeddings[order])
    ones = np.ones(n_embd, dtype=np.float32)
    for i in range(n_layer):
        # Std 1/sqrt(fan_in) keeps each layer's contribution comparable to, but not dominating,
        # the token embedding carried by the residual stream.
        add(f"blk.{i}.attn_norm.weight", ones)
        add(f"blk.{i}.attn_q.weight", normal(n_embd, n_embd, std=layer_scale * n_embd ** -0.5), True)
        add(f"blk.{i}.attn_k.weight", normal(kv_dim, n_embd, std=layer_scale * n_embd ** -0.5), True)
        add(f"blk.{i}.attn_v.weight", normal(kv_dim, n_embd, std=layer_scale * n_embd ** -0.5), True)
        add(f"blk.{i}.attn_output.weight", normal(n_embd, n_embd, std=layer_scale * n_embd ** -0.5), True)
        add(f"blk.{i}.ffn_norm.weight", ones)
        add(f"blk.{i}.ffn_gate.weight", normal(n_ff, n_embd, std=layer_scale * n_embd ** -0.5), True)
        add(f"blk.{i}.ffn_up.weight", normal(n_ff, n_embd, std=layer_scale * n_embd ** -0.5), True)
        add(f"blk.{i}.ffn_down.weight", normal(n_embd, n_ff, std=layer_scale * n_ff ** -0.5), True)
    add("output_norm.weight", ones)

    # output[j] = (chain part: embeddings of the tokens whose successor is j) + random part, each
    # row scaled so that a random unit-rms hidden state gives logits of std ~logit_scale; the
    # current token's embedding then gives its successor a logit ~sqrt(n_embd) times larger.
    eos_after_id = tokens.index(eos_after) if eos_after is not None else None
    if len(extra_after) > extra_tokens:
        raise ValueError(f"extra_after names {len(extra_after)} tokens but there are {extra_tokens} extra tokens")
    extra_after_ids = tuple(tokens.index(text) for text in extra_after)
    successor = successor_table(tokens, bos_id, eos_id, eos_after_id, chain_skip, extra_after_ids, units, specials)
    chain = np.zeros((n_vocab, n_embd), dtype=np.float32)
    has_successor = successor >= 0
    np.add.at(chain, successor[has_successor], embeddings[has_successor])
    # A few tokens have two predecessors: normalise so that no row dominates by its length.
    n_predecessors = np.bincount(successor[has_successor], minlength=n_vocab).astype(np.float32)
    chain /= np.sqrt(np.maximum(n_predecessors, 1))[:, None]
    output = (chain_strength * chain + normal(n_vocab, n_embd)) / np.float32(np.sqrt(1 + chain_strength ** 2))
    output *= np.float32(logit_scale / np.sqrt(n_embd))
    if fault["nan_weights"]:
        output[:, 0] = np.nan
    add("output.weight", output[order], True)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def parameter_count(path) -> int:
    """Number of weights in a GGUF file (all tensors)."""
    reader = gguf.GGUFReader(path)
    return int(sum(int(t.n_elements) for t in reader.tensors))


def read_metadata(path) -> dict:
    """All key/value pairs of a GGUF file as Python values (strings decoded, arrays as lists).

    Uses only ReaderField.parts/data/types, which every gguf version since 0.10 has.
    """
    metadata = {}
    for key, field in gguf.GGUFReader(path).fields.items():
        if key.startswith("GGUF."):  # header entries (version, counts), not metadata
            continue

        def value(index, kind):
            part = field.parts[index]
            return bytes(part).decode("utf-8") if kind == gguf.GGUFValueType.STRING else part.tolist()[0]

        if field.types[0] == gguf.GGUFValueType.ARRAY:
            metadata[key] = [value(i, field.types[-1]) for i in field.data]
        else:
            metadata[key] = value(field.data[0], field.types[0])
    return metadata
