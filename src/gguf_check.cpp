// Checks a GGUF file before llama.cpp sees it. llama.cpp refuses many bad files politely, but
// some make it abort the process (GGML_ASSERT): e.g. more layers declared than the file holds.
// What can be checked cheaply from the header is checked here, with a message naming the cause.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "fsgen/error.hpp"
#include "gguf.h"
#include "logging.hpp"
#include "weights.hpp"

namespace fsgen {
namespace {

// ---- what llama.cpp's graph builders assert, per architecture (data; the checks say why) ----

// The head size, value size and rotary dimensions must be equal (n_embd_head == n_rot asserts),
// and these are pure attention models in which every layer has attention heads.
const std::set<std::string> kFullRope = {
    "apertus", "arcee", "arctic", "baichuan", "chameleon", "codeshell", "cogvlm", "cohere2moe", "dbrx", "deci",
    "deepseek", "dots1", "dream", "ernie4_5", "ernie4_5-moe", "exaone", "exaone-moe", "exaone4", "falcon",
    "granite", "granite_swa", "graniteswitch", "grok", "grovemoe", "hunyuan-moe", "hunyuan_vl", "hy_v3",
    "internlm2", "jais2", "llada", "llada-moe", "llama", "llama4", "maincoder", "mellum", "minicpm", "minimax-01",
    "minimax-m2", "mistral3", "nemotron", "olmo", "olmo2", "olmoe", "orion", "paddleocr",
    "pangu-embedded", "plamo", "pockettts", "qwen2", "qwen2moe", "qwen2vl", "qwen3", "qwen3moe", "qwen3vl",
    "qwen3vlmoe", "rnd1", "seed_oss", "smallthinker", "smollm3", "starcoder2", "talkie", "xverse"};
// Full-rope architectures whose head counts vary per layer, with no attention at all in some
// (Deci: Nemotron-NAS).
const std::set<std::string> kVaryingHeads = {"deci"};
// The graph asserts that the model has experts.
const std::set<std::string> kNeedsExperts = {"bailingmoe2", "glm4moe", "grovemoe", "llada-moe", "smallthinker"};
// Multi-section rotary embeddings (M-RoPE): the graph asserts a non-empty section.
const std::set<std::string> kMultiRope = {"qwen2vl", "paddleocr", "qwen3vl", "qwen3vlmoe",
                                          "qwen35",  "qwen35moe", "qwen4exp", "qwen3tts"};
// rope.scaling.type values llama.cpp knows.
const std::set<std::string> kRopeScalingTypes = {"none", "linear", "yarn", "longrope"};

struct ArchTraits {
  bool full_rope = false;
  bool uniform_heads = false;
  bool needs_experts = false;
  bool multi_rope = false;
};

ArchTraits traits_of(const std::string& arch) {
  ArchTraits t;
  t.full_rope = kFullRope.count(arch) > 0;
  t.uniform_heads = t.full_rope && kVaryingHeads.count(arch) == 0;
  t.needs_experts = kNeedsExperts.count(arch) > 0;
  t.multi_rope = kMultiRope.count(arch) > 0;
  return t;
}

// ---- reading metadata values ----

struct GgufDeleter { void operator()(gguf_context* c) const { gguf_free(c); } };

std::optional<int64_t> integer_value(const gguf_context* g, const std::string& key) {
  const int64_t id = gguf_find_key(g, key.c_str());
  if (id < 0) return std::nullopt;
  switch (gguf_get_kv_type(g, id)) {
    case GGUF_TYPE_UINT8: return gguf_get_val_u8(g, id);
    case GGUF_TYPE_INT8: return gguf_get_val_i8(g, id);
    case GGUF_TYPE_UINT16: return gguf_get_val_u16(g, id);
    case GGUF_TYPE_INT16: return gguf_get_val_i16(g, id);
    case GGUF_TYPE_UINT32: return gguf_get_val_u32(g, id);
    case GGUF_TYPE_INT32: return gguf_get_val_i32(g, id);
    case GGUF_TYPE_UINT64: return static_cast<int64_t>(gguf_get_val_u64(g, id));
    case GGUF_TYPE_INT64: return gguf_get_val_i64(g, id);
    default: return std::nullopt;  // arrays (per-layer values) are left to llama.cpp
  }
}

const void* gguf_get_arr_data_or_null(const gguf_context* g, int64_t id) {
  // gguf_get_arr_data asserts (aborts) on string arrays: only call it for numbers.
  return gguf_get_arr_type(g, id) == GGUF_TYPE_STRING ? nullptr : gguf_get_arr_data(g, id);
}

// An integer scalar, or each element of an integer array (per-layer values); nullopt if absent
// or of another type.
std::optional<std::vector<int64_t>> integer_values(const gguf_context* g, const std::string& key) {
  const int64_t id = gguf_find_key(g, key.c_str());
  if (id < 0) return std::nullopt;
  if (gguf_get_kv_type(g, id) != GGUF_TYPE_ARRAY) {
    const auto v = integer_value(g, key);
    if (!v) return std::nullopt;
    return std::vector<int64_t>{*v};
  }
  const size_t n = gguf_get_arr_n(g, id);
  const void* data = gguf_get_arr_data_or_null(g, id);
  if (data == nullptr) return std::nullopt;
  std::vector<int64_t> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    switch (gguf_get_arr_type(g, id)) {
      case GGUF_TYPE_UINT8: out.push_back(static_cast<const uint8_t*>(data)[i]); break;
      case GGUF_TYPE_INT8: out.push_back(static_cast<const int8_t*>(data)[i]); break;
      case GGUF_TYPE_UINT16: out.push_back(static_cast<const uint16_t*>(data)[i]); break;
      case GGUF_TYPE_INT16: out.push_back(static_cast<const int16_t*>(data)[i]); break;
      case GGUF_TYPE_UINT32: out.push_back(static_cast<const uint32_t*>(data)[i]); break;
      case GGUF_TYPE_INT32: out.push_back(static_cast<const int32_t*>(data)[i]); break;
      case GGUF_TYPE_UINT64: out.push_back(static_cast<int64_t>(static_cast<const uint64_t*>(data)[i])); break;
      case GGUF_TYPE_INT64: out.push_back(static_cast<const int64_t*>(data)[i]); break;
      default: return std::nullopt;
    }
  }
  return out;
}

std::optional<std::string> string_value(const gguf_context* g, const std::string& key) {
  const int64_t id = gguf_find_key(g, key.c_str());
  if (id < 0 || gguf_get_kv_type(g, id) != GGUF_TYPE_STRING) return std::nullopt;
  return std::string(gguf_get_val_str(g, id));
}

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw ModelLoadError("cannot load " + path + ": " + why);
}

using GgufHandle = std::unique_ptr<gguf_context, GgufDeleter>;

// The file as the checks see it: its header, its architecture and that architecture's traits.
struct GgufFile {
  const gguf_context* g;
  const std::string& path;
  std::string arch;
  ArchTraits traits;

  std::string key(const char* name) const { return arch + "." + name; }  // "<arch>.<name>"
  std::optional<int64_t> integer(const char* name) const { return integer_value(g, key(name)); }
  std::optional<std::vector<int64_t>> integers(const char* name) const { return integer_values(g, key(name)); }
  [[noreturn]] void refuse(const std::string& why) const { fsgen::refuse(path, why); }
};

// ---- the checks, in the order they run ----

// A regular, non-empty file that starts with the GGUF magic. Returns its size.
uint64_t check_file(const std::string& path) {
  struct stat st {};
  if (path.empty()) throw ModelLoadError("no model path given");
  if (stat(path.c_str(), &st) != 0) refuse(path, "no such file");
  if (S_ISDIR(st.st_mode)) refuse(path, "it is a directory, not a GGUF file");
  if (!S_ISREG(st.st_mode)) refuse(path, "not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size == 0) refuse(path, "the file is empty");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) refuse(path, std::string("cannot open it: ") + std::strerror(errno));
  char magic[4] = {};
  if (std::fread(magic, 1, 4, f.get()) != 4 || std::memcmp(magic, "GGUF", 4) != 0) {
    refuse(path, "not a GGUF file (the first bytes are not \"GGUF\")");
  }
  return file_size;
}

// The metadata and tensor directory, read by gguf without the tensor data.
GgufHandle read_header(const std::string& path) {
  logging::install_once();
  logging::Capture capture;
  gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
  GgufHandle g(gguf_init_from_file(path.c_str(), params));
  if (!g) {
    const std::string reason = capture.errors();
    refuse(path, "the GGUF header is damaged or truncated" + (reason.empty() ? "" : " (" + reason + ")"));
  }
  return g;
}

// Every tensor's data lies inside the file. Returns the highest layer index among the tensor
// names ("blk.N."), -1 if none.
int64_t check_tensor_extents(const gguf_context* g, const std::string& path, uint64_t file_size) {
  const uint64_t data_offset = gguf_get_data_offset(g);
  int64_t max_block = -1;
  for (int64_t i = 0; i < gguf_get_n_tensors(g); ++i) {
    const uint64_t end = data_offset + gguf_get_tensor_offset(g, i) + gguf_get_tensor_size(g, i);
    const char* name = gguf_get_tensor_name(g, i);
    if (end > file_size) {
      refuse(path, std::string("tensor ") + name + " ends at byte " + std::to_string(end) + " but the file has " +
                       std::to_string(file_size) + " bytes (truncated?)");
    }
    int64_t block = -1;
    if (std::sscanf(name, "blk.%ld.", &block) == 1 && block > max_block) max_block = block;
  }
  return max_block;
}

std::string architecture(const gguf_context* g, const std::string& path) {
  const auto arch = string_value(g, "general.architecture");
  if (!arch) refuse(path, "no general.architecture in the metadata");
  return *arch;
}

// The declared layer count is sane and the file holds tensors for every layer. Returns it (0 if
// the metadata has none).
//
// This and the checks below guard hyperparameters that make llama.cpp abort (GGML_ASSERT) rather
// than refuse, while loading or when the first context builds its graph. Each was found by a
// file that crashed the process (tests/python/robustness/test_bad_model_files.py builds them).
int64_t check_layers(const GgufFile& f, int64_t max_block) {
  const auto blocks = f.integer("block_count");
  if (!blocks) return 0;
  if (*blocks <= 0 || *blocks > 512) f.refuse(f.key("block_count") + " is " + std::to_string(*blocks));
  if (max_block >= 0 && *blocks > max_block + 1) {
    f.refuse("the metadata declares " + std::to_string(*blocks) + " layers but the file holds tensors for " +
             std::to_string(max_block + 1) + " (missing tensors for blk." + std::to_string(max_block + 1) + ")");
  }
  if (const auto nextn = f.integer("nextn_predict_layers")) {
    if (*nextn < 0 || *nextn > *blocks) {
      f.refuse(f.key("nextn_predict_layers") + " (" + std::to_string(*nextn) + ") exceeds block_count (" +
               std::to_string(*blocks) + ")");
    }
  }
  return *blocks;
}

// Attention heads (per layer where the metadata gives arrays), and the key, value and rotary
// head sizes.
void check_attention(const GgufFile& f, int64_t n_layer) {
  const auto heads = f.integers("attention.head_count");
  const auto heads_kv = f.integers("attention.head_count_kv");
  const auto embd = f.integer("embedding_length");
  if (embd && *embd <= 0) f.refuse(f.key("embedding_length") + " is " + std::to_string(*embd));
  if (!heads || heads->empty()) return;
  const auto at = [](const std::vector<int64_t>& v, size_t i) { return v.size() == 1 ? v[0] : v[i]; };
  const auto layers_of = [&](const std::vector<int64_t>& v) {
    return v.size() == 1 ? size_t(1) : std::min(v.size(), static_cast<size_t>(std::max<int64_t>(n_layer, 0)));
  };
  const int64_t h0 = (*heads)[0];
  if (heads->size() == 1 && h0 <= 0) f.refuse(f.key("attention.head_count") + " is " + std::to_string(h0));
  if (embd && h0 > 0 && !f.integer("attention.key_length") && *embd % h0 != 0) {
    f.refuse(std::to_string(h0) + " attention heads do not divide the embedding length " + std::to_string(*embd));
  }
  for (size_t il = 0; il < layers_of(*heads); ++il) {
    if (at(*heads, il) < 0) f.refuse(f.key("attention.head_count") + " is negative for layer " + std::to_string(il));
  }
  if (heads_kv && !heads_kv->empty()) {
    const size_t n = std::max(layers_of(*heads), layers_of(*heads_kv));
    for (size_t il = 0; il < n; ++il) {
      const int64_t h = at(*heads, std::min(il, heads->size() - 1));
      const int64_t kv = at(*heads_kv, std::min(il, heads_kv->size() - 1));
      const std::string layer = heads_kv->size() == 1 && heads->size() == 1 ? "" : " in layer " + std::to_string(il);
      if (kv < 0 || (kv == 0 && h > 0 && (f.traits.uniform_heads || heads_kv->size() == 1)) || (kv > 0 && h % kv != 0)) {
        f.refuse(f.key("attention.head_count_kv") + " (" + std::to_string(kv) +
                 ") must be positive and divide head_count (" + std::to_string(h) + ")" + layer);
      }
    }
  }
  if (!embd || h0 <= 0) return;
  const int64_t head_k = f.integer("attention.key_length").value_or(*embd / h0);
  const int64_t head_v = f.integer("attention.value_length").value_or(*embd / h0);
  const int64_t n_rot = f.integer("rope.dimension_count").value_or(head_k);
  if (head_k <= 0 || head_v <= 0) {
    f.refuse("attention head sizes must be positive (key " + std::to_string(head_k) + ", value " +
             std::to_string(head_v) + ")");
  }
  if (n_rot < 0 || n_rot > head_k) {
    f.refuse(f.key("rope.dimension_count") + " (" + std::to_string(n_rot) + ") exceeds the head size (" +
             std::to_string(head_k) + ")");
  }
  if (f.traits.full_rope && (n_rot != head_k || head_v != head_k)) {
    f.refuse("architecture " + f.arch + " needs equal head, value and rotary sizes; the metadata gives key " +
             std::to_string(head_k) + ", value " + std::to_string(head_v) + ", rope " + std::to_string(n_rot));
  }
  if (f.traits.uniform_heads && heads->size() > 1) {
    for (size_t il = 1; il < layers_of(*heads); ++il) {
      if (at(*heads, il) != h0) {
        f.refuse("architecture " + f.arch + " needs the same number of attention heads in every layer (" +
                 f.key("attention.head_count") + " varies)");
      }
    }
  }
}

// Mixture of experts: the asserts of llama_model::load_hparams.
void check_experts(const GgufFile& f) {
  const int64_t n_expert = f.integer("expert_count").value_or(0);
  int64_t used = 0;
  if (const auto u = f.integers("expert_used_count")) {
    for (int64_t v : *u) used = std::max(used, v);
  }
  const int64_t groups = f.integer("expert_group_count").value_or(0);
  const int64_t group_used = f.integer("expert_group_used_count").value_or(0);
  bool ok = n_expert >= 0 && n_expert <= 1024 && used >= 0 && used <= n_expert && groups >= 0;
  if (ok && n_expert > 0) {
    ok = used > 0 && groups < n_expert &&
         (groups <= 1 || (n_expert % groups == 0 && group_used > 0 && group_used < groups));
  } else if (ok) {
    ok = used == 0 && groups == 0;
  }
  if (!ok) {
    f.refuse("inconsistent mixture-of-experts metadata (expert_count " + std::to_string(n_expert) +
             ", expert_used_count " + std::to_string(used) + ", expert_group_count " + std::to_string(groups) +
             ", expert_group_used_count " + std::to_string(group_used) + ")");
  }
  if (n_expert == 0 && f.traits.needs_experts) {
    f.refuse("architecture " + f.arch + " needs " + f.key("expert_count") + " > 0");
  }
}

// Rotary embeddings: a known scaling type; M-RoPE sections where the architecture needs them.
void check_rope(const GgufFile& f) {
  if (const auto scaling = string_value(f.g, f.key("rope.scaling.type"))) {
    if (kRopeScalingTypes.count(*scaling) == 0) {
      f.refuse("unknown " + f.key("rope.scaling.type") + " \"" + *scaling + "\"");
    }
  }
  if (!f.traits.multi_rope) return;
  const auto sections = f.integers("rope.dimension_sections");
  bool any = false;
  if (sections) {
    for (size_t i = 0; i < std::min<size_t>(3, sections->size()); ++i) any = any || (*sections)[i] > 0;
  }
  if (!any) f.refuse("architecture " + f.arch + " needs a positive " + f.key("rope.dimension_sections"));
}

// Normalisation epsilons: a negative or NaN one aborts the first decode (ggml asserts eps >= 0).
void check_epsilons(const GgufFile& f) {
  for (int64_t i = 0; i < gguf_get_n_kv(f.g); ++i) {
    const std::string name = gguf_get_key(f.g, i);
    const gguf_type type = gguf_get_kv_type(f.g, i);
    if (name.find("epsilon") == std::string::npos || (type != GGUF_TYPE_FLOAT32 && type != GGUF_TYPE_FLOAT64)) {
      continue;
    }
    const double eps = type == GGUF_TYPE_FLOAT32 ? gguf_get_val_f32(f.g, i) : gguf_get_val_f64(f.g, i);
    if (!std::isfinite(eps) || eps < 0) f.refuse(name + " is " + std::to_string(eps) + " (must be >= 0)");
  }
}

// A vocabulary is present, has no duplicate tokens, and (WordPiece) no byte tokens.
void check_vocabulary(const GgufFile& f) {
  const auto tokenizer = string_value(f.g, "tokenizer.ggml.model");
  if (tokenizer && (*tokenizer == "none" || *tokenizer == "no_vocab")) {
    f.refuse("the model has no vocabulary (tokenizer.ggml.model is \"" + *tokenizer +
             "\"); fsgen needs one to tokenize prompts");
  }
  const int64_t tokens_id = gguf_find_key(f.g, "tokenizer.ggml.tokens");
  if (tokens_id < 0 || gguf_get_kv_type(f.g, tokens_id) != GGUF_TYPE_ARRAY ||
      gguf_get_arr_type(f.g, tokens_id) != GGUF_TYPE_STRING) {
    return;
  }
  const size_t n = gguf_get_arr_n(f.g, tokens_id);
  std::unordered_set<std::string> seen;
  seen.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const char* text = gguf_get_arr_str(f.g, tokens_id, i);
    if (!seen.insert(text).second) {
      f.refuse("token " + std::to_string(i) + " (\"" + text + "\") appears twice in tokenizer.ggml.tokens");
    }
  }
  // A WordPiece vocabulary cannot render byte tokens (llama.cpp aborts on the first one).
  if (tokenizer && *tokenizer == "bert" && gguf_find_key(f.g, "tokenizer.ggml.token_type") >= 0) {
    if (const auto types = integer_values(f.g, "tokenizer.ggml.token_type")) {
      for (size_t i = 0; i < types->size(); ++i) {
        if ((*types)[i] == 6) f.refuse("token " + std::to_string(i) + " is a byte token in a WordPiece vocabulary");
      }
    }
  }
}

}  // namespace

void check_gguf_file(const std::string& path) {
  const uint64_t file_size = check_file(path);
  const GgufHandle header = read_header(path);
  const int64_t max_block = check_tensor_extents(header.get(), path, file_size);
  GgufFile file{header.get(), path, architecture(header.get(), path), {}};
  file.traits = traits_of(file.arch);
  const int64_t n_layer = check_layers(file, max_block);
  check_attention(file, n_layer);
  check_experts(file);
  check_rope(file);
  check_epsilons(file);
  check_vocabulary(file);
}

}  // namespace fsgen
