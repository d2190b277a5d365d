// The C API's library calls: versions, statuses and errors, options by name, name lists.
#include <cstdlib>
#include <cstring>
#include <new>

#include "c_api/handles.hpp"
#include "fsgen/result.hpp"

namespace fsgen_c {
namespace {
thread_local std::string last_error;
}

fsgen_status fail(fsgen_status status, const char* message) noexcept {
  try {
    last_error = message;
  } catch (...) {
    last_error.clear();  // no memory for the message: the status says enough
  }
  return status;
}

fsgen_status status_of_current_exception() noexcept {
  try {
    throw;
  } catch (const fsgen::ModelLoadError& e) {
    return fail(FSGEN_ERR_MODEL_LOAD, e.what());
  } catch (const fsgen::IncompatibleVocabError& e) {
    return fail(FSGEN_ERR_INCOMPATIBLE_VOCAB, e.what());
  } catch (const fsgen::TemplateError& e) {
    return fail(FSGEN_ERR_TEMPLATE, e.what());
  } catch (const fsgen::ContextOverflowError& e) {
    return fail(FSGEN_ERR_CONTEXT_OVERFLOW, e.what());
  } catch (const fsgen::GenerationError& e) {
    return fail(FSGEN_ERR_GENERATION, e.what());
  } catch (const fsgen::InvalidArgumentError& e) {
    return fail(FSGEN_ERR_INVALID_ARGUMENT, e.what());
  } catch (const std::bad_alloc&) {
    return fail(FSGEN_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(FSGEN_ERR_INTERNAL, e.what());
  } catch (...) {
    return fail(FSGEN_ERR_INTERNAL, "unknown exception");
  }
}

fsgen::Prompt make_prompt(const char* prompt, const char* const* roles, const char* const* contents, size_t n) {
  if (prompt != nullptr && n > 0) throw fsgen::InvalidArgumentError("give exactly one of prompt or messages");
  if (prompt != nullptr) return fsgen::Prompt::from_text(prompt);
  std::vector<fsgen::ChatMessage> messages;
  for (size_t i = 0; i < n; ++i) {
    if (roles == nullptr || contents == nullptr || roles[i] == nullptr || contents[i] == nullptr) {
      throw fsgen::InvalidArgumentError("messages[" + std::to_string(i) + "] has a NULL role or content");
    }
    messages.push_back({roles[i], contents[i]});
  }
  return fsgen::Prompt::from_messages(std::move(messages));
}

fsgen::ModelOptions model_options(const fsgen_options* options) {
  if (options == nullptr) return {};
  if (options->kind != FSGEN_OPTIONS_MODEL) {
    throw fsgen::InvalidArgumentError("these are generation options (FSGEN_OPTIONS_GENERATE), not model options");
  }
  return fsgen::make_model_options(options->params);
}

fsgen::GenerateOptions generate_options(const fsgen_options* options, fsgen::OptionsTarget target) {
  if (options != nullptr && options->kind != FSGEN_OPTIONS_GENERATE) {
    throw fsgen::InvalidArgumentError("these are model options (FSGEN_OPTIONS_MODEL), not generation options");
  }
  return fsgen::make_generate_options(options ? options->params : fsgen::ParamMap{}, target);
}

}  // namespace fsgen_c

using fsgen_c::guard;
using fsgen_c::require;

namespace {

fsgen_status set_value(fsgen_options* options, const char* name, fsgen::ParamValue value) {
  return guard([&] {
    require(options, "options");
    require(name, "name");
    options->params[name] = std::move(value);
    return FSGEN_OK;
  });
}

}  // namespace

extern "C" {

int fsgen_api_version(void) { return FSGEN_API_VERSION; }
const char* fsgen_version(void) { return FSGEN_VERSION; }
const char* fsgen_last_error_message(void) { return fsgen_c::last_error.c_str(); }
void fsgen_string_free(char* s) { std::free(s); }

const char* fsgen_status_name(int status) {
  switch (status) {
    case FSGEN_OK: return "FSGEN_OK";
    case FSGEN_END: return "FSGEN_END";
    case FSGEN_TIMEOUT: return "FSGEN_TIMEOUT";
    case FSGEN_ERR_MODEL_LOAD: return "FSGEN_ERR_MODEL_LOAD";
    case FSGEN_ERR_INCOMPATIBLE_VOCAB: return "FSGEN_ERR_INCOMPATIBLE_VOCAB";
    case FSGEN_ERR_TEMPLATE: return "FSGEN_ERR_TEMPLATE";
    case FSGEN_ERR_CONTEXT_OVERFLOW: return "FSGEN_ERR_CONTEXT_OVERFLOW";
    case FSGEN_ERR_GENERATION: return "FSGEN_ERR_GENERATION";
    case FSGEN_ERR_INVALID_ARGUMENT: return "FSGEN_ERR_INVALID_ARGUMENT";
    case FSGEN_ERR_OUT_OF_MEMORY: return "FSGEN_ERR_OUT_OF_MEMORY";
    case FSGEN_ERR_INTERNAL: return "FSGEN_ERR_INTERNAL";
    default: return "unknown";
  }
}

fsgen_status fsgen_options_new(fsgen_options_kind kind, fsgen_options** out) {
  return guard([&] {
    require(out, "out");
    if (kind != FSGEN_OPTIONS_MODEL && kind != FSGEN_OPTIONS_GENERATE) {
      throw fsgen::InvalidArgumentError("kind must be FSGEN_OPTIONS_MODEL or FSGEN_OPTIONS_GENERATE");
    }
    *out = new fsgen_options{kind, {}};
    return FSGEN_OK;
  });
}

void fsgen_options_free(fsgen_options* options) { delete options; }

fsgen_status fsgen_options_set_str(fsgen_options* options, const char* name, const char* value) {
  if (value == nullptr) return fsgen_c::fail(FSGEN_ERR_INVALID_ARGUMENT, "value is NULL");
  return guard([&] { return set_value(options, name, std::string(value)); });
}
fsgen_status fsgen_options_set_int(fsgen_options* options, const char* name, int64_t value) {
  return set_value(options, name, std::int64_t(value));
}
fsgen_status fsgen_options_set_uint(fsgen_options* options, const char* name, uint64_t value) {
  return set_value(options, name, std::uint64_t(value));
}
fsgen_status fsgen_options_set_float(fsgen_options* options, const char* name, double value) {
  return set_value(options, name, value);
}
fsgen_status fsgen_options_set_bool(fsgen_options* options, const char* name, int value) {
  return set_value(options, name, value != 0);
}
fsgen_status fsgen_options_set_strs(fsgen_options* options, const char* name, const char* const* values, size_t n) {
  return guard([&] {
    std::vector<std::string> list;
    for (size_t i = 0; i < n; ++i) {
      if (values == nullptr || values[i] == nullptr) throw fsgen::InvalidArgumentError("values[" + std::to_string(i) + "] is NULL");
      list.emplace_back(values[i]);
    }
    return set_value(options, name, std::move(list));
  });
}
fsgen_status fsgen_options_unset(fsgen_options* options, const char* name) {
  return guard([&] {
    require(options, "options");
    require(name, "name");
    options->params.erase(name);
    return FSGEN_OK;
  });
}

const char* fsgen_param_name(size_t i) {
  const auto& table = fsgen::param_table();
  return i < table.size() ? table[i].name.c_str() : nullptr;
}
const char* fsgen_model_option_name(size_t i) {
  const auto& table = fsgen::model_param_table();
  return i < table.size() ? table[i].name.c_str() : nullptr;
}
const char* fsgen_stat_name(size_t i) {
  const auto& fields = fsgen::stat_fields();
  return i < fields.size() ? fields[i].name : nullptr;
}

}  // extern "C"
