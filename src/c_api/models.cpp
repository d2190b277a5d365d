// The C API's models and pairs: loading, chat templates, freeing.
#include <cstdlib>
#include <cstring>

#include "c_api/handles.hpp"

using fsgen_c::guard;
using fsgen_c::require;

extern "C" {

fsgen_status fsgen_model_load(const char* path, const fsgen_options* options, fsgen_model** out) {
  return guard([&] {
    require(path, "path");
    require(out, "out");
    *out = new fsgen_model{fsgen::Model::load(path, fsgen_c::model_options(options))};
    return FSGEN_OK;
  });
}

// The handle is one reference: weights a pair or a stream still uses stay loaded.
void fsgen_model_free(fsgen_model* model) { delete model; }

fsgen_status fsgen_model_apply_chat_template(const fsgen_model* model, const char* const* roles,
                                             const char* const* contents, size_t n, int add_assistant, char** out) {
  return guard([&] {
    require(model, "model");
    require(out, "out");
    const fsgen::Prompt prompt = fsgen_c::make_prompt(nullptr, roles, contents, n);
    const std::string text = model->model.apply_chat_template(prompt.messages, add_assistant != 0);
    char* copy = static_cast<char*>(std::malloc(text.size() + 1));
    if (copy == nullptr) throw std::bad_alloc();
    std::memcpy(copy, text.c_str(), text.size() + 1);
    *out = copy;
    return FSGEN_OK;
  });
}

fsgen_status fsgen_pair_new(const fsgen_model* small, const fsgen_model* large, const fsgen_model* small_base,
                            const fsgen_options* options, fsgen_pair** out) {
  return guard([&] {
    require(small, "small");
    require(large, "large");
    require(out, "out");
    std::optional<fsgen::Model> base;
    if (small_base != nullptr) base = small_base->model;
    const fsgen::ModelOptions context = options ? fsgen_c::model_options(options) : large->model.options();
    *out = new fsgen_pair{std::make_shared<fsgen::Pair>(small->model, large->model, base, context)};
    return FSGEN_OK;
  });
}

fsgen_status fsgen_pair_load(const char* small_path, const char* large_path, const fsgen_options* options,
                             fsgen_pair** out) {
  return guard([&] {
    require(small_path, "small_path");
    require(large_path, "large_path");
    require(out, "out");
    const fsgen::ModelOptions o = fsgen_c::model_options(options);
    fsgen::Model small = fsgen::Model::load(small_path, o);
    fsgen::Model large = fsgen::Model::load(large_path, o);
    *out = new fsgen_pair{std::make_shared<fsgen::Pair>(small, large, std::nullopt, o)};
    return FSGEN_OK;
  });
}

void fsgen_pair_free(fsgen_pair* pair) { delete pair; }

}  // extern "C"
