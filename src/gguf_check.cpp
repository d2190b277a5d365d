// Checks a GGUF file before llama.cpp sees it. llama.cpp refuses many bad files politely, but
// some make it abort the process (GGML_ASSERT): e.g. more layers declared than the file holds.
// What can be checked cheaply from the header is checked here, with a message naming the cause.
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "fsgen/error.hpp"
#include "gguf.h"
#include "logging.hpp"
#include "weights.hpp"

namespace fsgen {
namespace {

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

[[noreturn]] void refuse(const std::string& path, const std::string& why) {
  throw ModelLoadError("cannot load " + path + ": " + why);
}

}  // namespace

void check_gguf_file(const std::string& path) {
  struct stat st {};
  if (path.empty()) throw ModelLoadError("no model path given");
  if (stat(path.c_str(), &st) != 0) refuse(path, "no such file");
  if (S_ISDIR(st.st_mode)) refuse(path, "it is a directory, not a GGUF file");
  if (!S_ISREG(st.st_mode)) refuse(path, "not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size == 0) refuse(path, "the file is empty");
  {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
    if (!f) refuse(path, std::string("cannot open it: ") + std::strerror(errno));
    char magic[4] = {};
    if (std::fread(magic, 1, 4, f.get()) != 4 || std::memcmp(magic, "GGUF", 4) != 0) {
      refuse(path, "not a GGUF file (the first bytes are not \"GGUF\")");
    }
  }

  std::unique_ptr<gguf_context, GgufDeleter> g;
  {
    logging::install_once();
    logging::Capture capture;
    gguf_init_params params{/*no_alloc=*/true, /*ctx=*/nullptr};
    g.reset(gguf_init_from_file(path.c_str(), params));
    if (!g) {
      const std::string reason = capture.errors();
      refuse(path, "the GGUF header is damaged or truncated" + (reason.empty() ? "" : " (" + reason + ")"));
    }
  }

  // Tensor data inside the file.
  const uint64_t data_offset = gguf_get_data_offset(g.get());
  const int64_t n_tensors = gguf_get_n_tensors(g.get());
  int64_t max_block = -1;
  for (int64_t i = 0; i < n_tensors; ++i) {
    const uint64_t end = data_offset + gguf_get_tensor_offset(g.get(), i) + gguf_get_tensor_size(g.get(), i);
    const char* name = gguf_get_tensor_name(g.get(), i);
    if (end > file_size) {
      refuse(path, std::string("tensor ") + name + " ends at byte " + std::to_string(end) + " but the file has " +
                       std::to_string(file_size) + " bytes (truncated?)");
    }
    int64_t block = -1;
    if (std::sscanf(name, "blk.%ld.", &block) == 1 && block > max_block) max_block = block;
  }

  // Hyperparameters that make llama.cpp abort rather than refuse.
  const int64_t arch_id = gguf_find_key(g.get(), "general.architecture");
  if (arch_id < 0 || gguf_get_kv_type(g.get(), arch_id) != GGUF_TYPE_STRING) {
    refuse(path, "no general.architecture in the metadata");
  }
  const std::string arch = gguf_get_val_str(g.get(), arch_id);
  const auto blocks = integer_value(g.get(), arch + ".block_count");
  if (blocks) {
    if (*blocks <= 0 || *blocks > 512) refuse(path, arch + ".block_count is " + std::to_string(*blocks));
    if (max_block >= 0 && *blocks > max_block + 1) {
      refuse(path, "the metadata declares " + std::to_string(*blocks) + " layers but the file holds tensors for " +
                       std::to_string(max_block + 1) + " (missing tensors for blk." + std::to_string(max_block + 1) +
                       ")");
    }
  }
  const auto heads = integer_value(g.get(), arch + ".attention.head_count");
  const auto heads_kv = integer_value(g.get(), arch + ".attention.head_count_kv");
  const auto embd = integer_value(g.get(), arch + ".embedding_length");
  if (heads) {
    if (*heads <= 0) refuse(path, arch + ".attention.head_count is " + std::to_string(*heads));
    if (embd && *embd > 0 && !integer_value(g.get(), arch + ".attention.key_length") && *embd % *heads != 0) {
      refuse(path, std::to_string(*heads) + " attention heads do not divide the embedding length " +
                       std::to_string(*embd));
    }
    if (heads_kv && (*heads_kv <= 0 || *heads % *heads_kv != 0)) {
      refuse(path, arch + ".attention.head_count_kv (" + std::to_string(*heads_kv) +
                       ") must be positive and divide head_count (" + std::to_string(*heads) + ")");
    }
  }
  if (embd && *embd <= 0) refuse(path, arch + ".embedding_length is " + std::to_string(*embd));
}

}  // namespace fsgen
